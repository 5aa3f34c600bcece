"""The shardkv snapshot: its wire form, and reading the previous version's.

Rules kept here:
- Version 2 (written now): keys and values as bytes, duplicate tables as
  ``{client: [seq, result]}``, configs with their sharding.
- Version 1 (the previous version, text values, put/append only) is read, never misread:
  its text becomes UTF-8 bytes, each table entry ``seq`` becomes ``[seq, None]``, and its
  configs, which have no sharding field, are the course layout that version used. Any
  other version is refused, naming it.
- ``grants`` (handoff -> the group and config it was given to) and ``forfeited`` (shards
  owned but never installed) are optional: a snapshot without them has none.
- `decode` checks everything (shard numbers, keys in their shard, numbers in range) and
  raises `ValueError` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..kvproto import is_int
from ..shardmaster import Config, check_gid, check_servers
from ._tables import DedupTable, ShardData, check_data, check_dedup, dedup_to_wire

SNAPSHOT_VERSION = 2
"""Format version written by `encode`."""

READABLE_VERSIONS = (1, 2)
"""Versions `decode` reads: this one and the previous one (diskv-trio 0.1)."""


class Drop(NamedTuple):
    shard: int
    config_num: int
    gid: int
    servers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Contents:
    """Everything a shardkv state needs to resume applying."""

    gid: int
    config: Config
    previous_config: Config | None
    shards: Mapping[int, tuple[ShardData, DedupTable]]
    waiting: frozenset[int]
    handoffs: Mapping[tuple[int, int], tuple[ShardData, DedupTable]]
    drops: tuple[Drop, ...]
    grants: Mapping[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    forfeited: frozenset[int] = frozenset()


def encode(contents: Contents) -> dict[str, Any]:
    """The snapshot's plain CBOR-able form (maps copied)."""
    previous = contents.previous_config
    return {
        "version": SNAPSHOT_VERSION,
        "gid": contents.gid,
        "config": contents.config.to_wire(),
        "previous_config": None if previous is None else previous.to_wire(),
        "shards": [
            [shard, dict(data), dedup_to_wire(dedup)]
            for shard, (data, dedup) in sorted(contents.shards.items())
        ],
        "waiting": sorted(contents.waiting),
        "handoffs": [
            [num, shard, dict(data), dedup_to_wire(dedup)]
            for (num, shard), (data, dedup) in sorted(contents.handoffs.items())
        ],
        "drops": [[d.shard, d.config_num, d.gid, list(d.servers)] for d in contents.drops],
        "grants": [[num, shard, gid, to] for (num, shard), (gid, to) in sorted(contents.grants.items())],
        "forfeited": sorted(contents.forfeited),
    }


def decode(snapshot: object) -> Contents:
    """The contents of a version 1 or 2 snapshot.

    Raises:
        ValueError: another version, or a malformed snapshot.
    """
    try:
        return _decode(snapshot)
    except (TypeError, KeyError, IndexError) as error:
        raise ValueError(f"shardkv snapshot malformed: {error!r}") from None


def _shard_number(shard: object, config: Config) -> int:
    if not (is_int(shard) and 0 <= shard < config.sharding.count):  # type: ignore[operator]
        raise ValueError(f"shardkv snapshot: shard {shard!r} out of range")
    assert isinstance(shard, int)
    return shard


def _decode(snapshot: object) -> Contents:
    if not isinstance(snapshot, Mapping):
        raise ValueError(f"shardkv snapshot must be a map, got {type(snapshot).__name__}")
    version = snapshot.get("version")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"shardkv snapshot version {version!r:.20} is not one this version reads "
            f"({', '.join(map(str, READABLE_VERSIONS))}): written by a newer diskv-trio?"
        )
    gid = check_gid(snapshot["gid"], "shardkv snapshot")
    config = Config.from_wire(snapshot["config"])
    previous = None
    if snapshot["previous_config"] is not None:
        previous = Config.from_wire(snapshot["previous_config"])
    shards: dict[int, tuple[ShardData, DedupTable]] = {}
    for shard, data, dedup in snapshot["shards"]:
        shard = _shard_number(shard, config)
        if shard in shards:
            raise ValueError(f"shardkv snapshot: shard {shard} appears twice")
        shards[shard] = (
            check_data(data, shard, config.sharding, "snapshot shard"),
            check_dedup(dedup, "snapshot shard"),
        )
    waiting = frozenset(_shard_number(shard, config) for shard in snapshot["waiting"])
    handoffs: dict[tuple[int, int], tuple[ShardData, DedupTable]] = {}
    for num, shard, data, dedup in snapshot["handoffs"]:
        shard = _shard_number(shard, config)
        if not is_int(num) or not 0 <= num < config.num:
            raise ValueError(f"shardkv snapshot: handoff config {num!r} out of range")
        handoffs[(num, shard)] = (
            check_data(data, shard, config.sharding, "snapshot handoff"),
            check_dedup(dedup, "snapshot handoff"),
        )
    drops = []
    for shard, num, drop_gid, servers in snapshot["drops"]:
        shard = _shard_number(shard, config)
        if not is_int(num) or not 0 <= num < config.num:
            raise ValueError(f"shardkv snapshot: drop config {num!r} out of range")
        drops.append(
            Drop(shard, num, check_gid(drop_gid, "snapshot drop"), check_servers(servers, "snapshot drop"))
        )
    if previous is not None and previous.num > 0 and previous.sharding != config.sharding:
        raise ValueError("shardkv snapshot: configs disagree on the sharding")
    grants: dict[tuple[int, int], tuple[int, int]] = {}
    for num, shard, grant_gid, to_config in snapshot.get("grants", ()):
        # A grant outlives its hand-off (see _handback.py): it need not name one still held.
        if not is_int(num) or not 0 <= num < config.num or not is_int(to_config) or to_config <= num:
            raise ValueError(f"shardkv snapshot: grant of handoff {num!r}/{shard!r} malformed")
        grants[(num, _shard_number(shard, config))] = (check_gid(grant_gid, "snapshot grant"), to_config)
    forfeited = frozenset(_shard_number(shard, config) for shard in snapshot.get("forfeited", ()))
    return Contents(gid, config, previous, shards, waiting, handoffs, tuple(drops), grants, forfeited)
