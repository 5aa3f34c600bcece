"""Shard configurations: which replica group serves each shard, and the groups' servers.

Rules this module keeps:

- A `Config` is immutable and validated on construction: `num >= 0`, exactly
  `sharding.count` shards (the cluster's `Sharding`, the same in every config of a cluster), every shard on gid 0 (unassigned) or on a gid present in `groups`, gids positive,
  every group with at least one server address.
- `groups` is an immutable view ordered by gid, so two equal configs also encode the same
  bytes on the wire.
- `to_wire()` gives plain ints, strings, lists and an int-keyed map (CBOR-able);
  `from_wire()` accepts exactly that (gid keys may also be decimal strings, as a text
  encoding would give them) and raises `ValueError` naming the bad field otherwise. A wire
  config without ``"sharding"`` was written before the field existed and means the course
  layout (`COURSE_SHARDING`), which is what it meant then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..kvproto import COURSE_SHARD_COUNT, COURSE_SHARDING, Sharding, is_int

SHARD_COUNT = COURSE_SHARD_COUNT
"""The course's NShards: the shard count of `COURSE_SHARDING`, which the ported course suites
use. A cluster's own count is its configs' `sharding.count`."""

GID_MAX = 2**63 - 1
"""Largest group id: the course's gids are Go int64, and CBOR encodes this as one uint."""

GROUPS_MAX = 1024
"""Most groups one config may hold: every config is kept in the history and sent whole in
each query reply, so it must stay small (the course uses at most 40 at once)."""

GROUP_SERVERS_MAX = 64
"""Most server addresses one group may list (replica groups have 3 or 5 in the course)."""

ADDRESS_CHARS_MAX = 1024
"""Longest server address accepted (a Unix socket path or host:port)."""

CONFIG_NUM_MAX = 2**63 - 1
"""Largest config number: one CBOR uint, never a bignum, which the wire refuses (a log entry
holding one would decode differently at the proposer and at its peers)."""


def check_gid(gid: object, what: str) -> int:
    """`gid` as a group id (1..GID_MAX).

    Raises:
        ValueError: naming `what` and the problem.
    """
    if not is_int(gid):
        raise ValueError(f"{what}: gid must be an int, got {type(gid).__name__}")
    assert isinstance(gid, int)
    if not 0 < gid <= GID_MAX:
        raise ValueError(f"{what}: gid must be in 1..{GID_MAX}, got {gid}")
    return gid


def check_servers(servers: object, what: str) -> tuple[str, ...]:
    """`servers` as a group's address list: 1..GROUP_SERVERS_MAX strings of bounded length.

    Raises:
        ValueError: naming `what` and the problem.
    """
    if isinstance(servers, str | bytes) or not isinstance(servers, list | tuple):
        raise ValueError(f"{what}: servers must be a list of str, got {type(servers).__name__}")
    if not servers:
        raise ValueError(f"{what}: servers must not be empty")
    if len(servers) > GROUP_SERVERS_MAX:
        raise ValueError(f"{what}: {len(servers)} servers, at most {GROUP_SERVERS_MAX}")
    for address in servers:
        if not isinstance(address, str):
            raise ValueError(f"{what}: server address must be str, got {type(address).__name__}")
        if not 0 < len(address) <= ADDRESS_CHARS_MAX:
            raise ValueError(f"{what}: server address length must be 1..{ADDRESS_CHARS_MAX}")
    return tuple(servers)


@dataclass(frozen=True, slots=True)
class Config:
    """One numbered configuration: the owner gid of each shard and each group's servers.

    Construct with any sequence for `shards` and any mapping for `groups`; they are stored
    as a tuple and a read-only view sorted by gid.

    Raises:
        ValueError: a field is of the wrong type or breaks the rules in the module docstring.
    """

    num: int
    shards: tuple[int, ...]
    groups: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    sharding: Sharding = COURSE_SHARDING

    def __post_init__(self) -> None:
        if not isinstance(self.sharding, Sharding):
            raise ValueError(f"config sharding must be a Sharding, got {type(self.sharding).__name__}")
        if not is_int(self.num) or not 0 <= self.num <= CONFIG_NUM_MAX:
            raise ValueError(f"config num must be an int in 0..{CONFIG_NUM_MAX}, got {self.num!r}")
        if isinstance(self.shards, str | bytes) or not isinstance(self.shards, list | tuple):
            raise ValueError(
                f"config shards must be a list of gids, got {type(self.shards).__name__}"
            )
        if len(self.shards) != self.sharding.count:
            raise ValueError(
                f"config shards must have {self.sharding.count} entries, got {len(self.shards)}"
            )
        if not isinstance(self.groups, Mapping):
            raise ValueError(f"config groups must be a mapping, got {type(self.groups).__name__}")
        if len(self.groups) > GROUPS_MAX:
            raise ValueError(f"config has {len(self.groups)} groups, at most {GROUPS_MAX}")
        groups: dict[int, tuple[str, ...]] = {}
        for gid in self.groups:
            check_gid(gid, "config groups")
        for gid in sorted(self.groups):
            groups[gid] = check_servers(self.groups[gid], f"config group {gid}")
        for shard, gid in enumerate(self.shards):
            if not is_int(gid):
                raise ValueError(f"config shard {shard}: gid must be an int, got {gid!r}")
            if gid != 0 and gid not in groups:
                raise ValueError(f"config shard {shard}: gid {gid} is not a group of the config")
        object.__setattr__(self, "shards", tuple(self.shards))
        object.__setattr__(self, "groups", MappingProxyType(groups))

    def __hash__(self) -> int:
        return hash((self.num, self.shards, tuple(self.groups.items()), self.sharding))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return (
            self.num == other.num
            and self.shards == other.shards
            and dict(self.groups) == dict(other.groups)
            and self.sharding == other.sharding
        )

    def __repr__(self) -> str:
        return (
            f"Config(num={self.num}, shards={self.shards}, groups={dict(self.groups)}, "
            f"sharding={self.sharding})"
        )

    @classmethod
    def initial(cls, sharding: Sharding = COURSE_SHARDING) -> Config:
        """Config 0: no groups, every shard on gid 0."""
        return cls(0, (0,) * sharding.count, {}, sharding)

    def shard_of(self, key: bytes) -> int:
        """The shard of `key` in this config's cluster."""
        return self.sharding.shard_of(key)

    def shards_of(self, gid: int) -> frozenset[int]:
        """The shards `gid` owns in this config."""
        return frozenset(shard for shard, owner in enumerate(self.shards) if owner == gid)

    def to_wire(self) -> dict[str, Any]:
        """Plain CBOR-able form: ``{"num": int, "shards": [int], "groups": {gid: [str]},
        "sharding": {"count": int, "scheme": str}}``."""
        return {
            "num": self.num,
            "shards": list(self.shards),
            "groups": {gid: list(servers) for gid, servers in self.groups.items()},
            "sharding": self.sharding.to_wire(),
        }

    @classmethod
    def from_wire(cls, wire: object) -> Config:
        """Rebuild a config from `to_wire()` output, as decoded from CBOR.

        Raises:
            ValueError: `wire` is not a config's wire form; the message names the field.
        """
        if not isinstance(wire, Mapping):
            raise ValueError(f"config must be a map, got {type(wire).__name__}")
        missing = {"num", "shards", "groups"} - set(wire)
        if missing:
            raise ValueError(f"config lacks field(s) {sorted(missing)}")
        extra = set(wire) - {"num", "shards", "groups", "sharding"}
        if extra:
            raise ValueError(f"config has unknown field(s) {sorted(map(str, extra))}")
        raw_groups = wire["groups"]
        if not isinstance(raw_groups, Mapping):
            raise ValueError(f"config groups must be a map, got {type(raw_groups).__name__}")
        groups: dict[int, tuple[str, ...]] = {}
        for key, servers in raw_groups.items():
            gid = _gid_from_key(key)
            if gid in groups:
                raise ValueError(f"config groups: gid {gid} appears twice")
            groups[gid] = check_servers(servers, f"config group {gid}")
        return cls(wire["num"], wire["shards"], groups, Sharding.from_wire(wire.get("sharding")))


def _gid_from_key(key: object) -> int:
    """A group map key: an int, or its canonical decimal text (text encodings stringify keys)."""
    if isinstance(key, str) and key.isascii() and key.isdecimal() and str(int(key)) == key:
        return check_gid(int(key), "config groups")
    return check_gid(key, "config groups")
