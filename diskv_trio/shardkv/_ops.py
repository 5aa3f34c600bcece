"""Group-internal shardkv ops as typed records, built from validated fields before proposal.

Rules kept here:
- Every op a replica proposes is a record whose `to_log()` holds only the fields the state
  machine reads. Client ops are `diskv_trio.kvproto` records (`decode_op`); the ones here
  are the replica's own: reconfig, install, drop and dropped_ack.
- Each builder either returns a record or raises `ValueError` naming the bad field; it
  never raises anything else, whatever shape its input has.
- Bounds: numbers 0..`NUMBER_MAX`, shards 0..`SHARD_COUNT_MAX`-1 here (the state checks the
  cluster's count); pulled shard data must lie in its shard and within the key/value limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..kvproto import SHARD_COUNT_MAX, Sharding, check_number, is_int
from ..shardmaster import Config
from ._handback import Grant, Source
from ._tables import DedupTable, ShardData, check_data, check_dedup, dedup_to_wire


def _shard(value: object) -> int:
    if not is_int(value):
        raise ValueError(f"shard must be an integer, got {type(value).__name__}")
    assert isinstance(value, int)
    if not 0 <= value < SHARD_COUNT_MAX:
        raise ValueError(f"shard must be in 0..{SHARD_COUNT_MAX - 1}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class ReconfigOp:
    """Move to `config` (the next one)."""

    config: Config

    def to_log(self) -> dict[str, Any]:
        return {"op": "reconfig", "config": self.config.to_wire()}


@dataclass(frozen=True, slots=True)
class InstallOp:
    """Install `shard`'s data and duplicate table, pulled for config `config_num`."""

    config_num: int
    shard: int
    data: ShardData = field(default_factory=dict)
    dedup: DedupTable = field(default_factory=dict)
    source: Source | None = None
    """The hand-off's holder when not the previous owner (a reclaim, see `_handback`)."""

    def to_log(self) -> dict[str, Any]:
        log = {
            "op": "install",
            "config_num": self.config_num,
            "shard": self.shard,
            "data": dict(self.data),
            "dedup": dedup_to_wire(self.dedup),
        }
        if self.source is not None:
            log["source"] = [self.source.config_num, self.source.gid, list(self.source.servers)]
        return log


@dataclass(frozen=True, slots=True)
class GrantOp:
    """Give hand-off ``(config_num, shard)`` to `grant` before handing it out (holder's log)."""

    config_num: int
    shard: int
    grant: Grant

    def to_log(self) -> dict[str, Any]:
        return {
            "op": "grant",
            "config_num": self.config_num,
            "shard": self.shard,
            "gid": self.grant.gid,
            "to_config": self.grant.config_num,
        }


@dataclass(frozen=True, slots=True)
class ForfeitOp:
    """Give up waiting shard `shard` at `config_num`: its source went to `granted_to`."""

    config_num: int
    shard: int
    granted_to: Grant

    def to_log(self) -> dict[str, Any]:
        return {"op": "forfeit", "config_num": self.config_num, "shard": self.shard, "granted_to": list(self.granted_to)}


@dataclass(frozen=True, slots=True)
class ShardRefOp:
    """``drop`` (delete handoff ``(config_num, shard)``) or ``dropped_ack`` (stop asking)."""

    name: str
    config_num: int
    shard: int

    def to_log(self) -> dict[str, Any]:
        return {"op": self.name, "config_num": self.config_num, "shard": self.shard}


def shard_ref_op(name: str, args: object) -> ShardRefOp:
    """A ``drop`` or ``dropped_ack`` op for ``(args["config_num"], args["shard"])``.

    Raises:
        ValueError: the numbers are missing, mistyped or out of range.
    """
    assert name in ("drop", "dropped_ack")
    if not isinstance(args, Mapping):
        raise ValueError(f"arguments must be a map, got {type(args).__name__}")
    return ShardRefOp(name, check_number(args.get("config_num"), "config_num"), _shard(args.get("shard")))


def install_op(
    config_num: int, shard: int, sharding: Sharding, reply: object, source: Source | None = None
) -> InstallOp:
    """The install op for a shard pulled from its previous owner (`reply` is its answer).

    Raises:
        ValueError: the reply is not a map of bounded data whose keys are all in `shard`
            and a duplicate table of bounded client ids and sequence numbers.
    """
    config_num = check_number(config_num, "config_num")
    shard = _shard(shard)
    if shard >= sharding.count:
        raise ValueError(f"shard {shard} is not one of the cluster's {sharding.count}")
    if not isinstance(reply, Mapping):
        raise ValueError(f"pull reply must be a map, got {type(reply).__name__}")
    data = check_data(reply.get("data", {}), shard, sharding, "pull reply")
    dedup = check_dedup(reply.get("dedup", {}), "pull reply")
    return InstallOp(config_num, shard, data, dedup, source)
