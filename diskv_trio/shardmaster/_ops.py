"""Shardmaster ops as typed records, built from a caller's arguments before they are proposed.

Rules kept here:
- An op reaches the Paxos log only as `to_log()` of one of these records, so the log holds
  exactly the fields the state machine reads, each typed and bounded; nothing a caller sent
  besides those fields (however deep, large or cyclic) is copied into it.
- `build_op` either returns a record or raises `ValueError` naming the bad field; it never
  raises anything else, whatever shape the arguments have.
- Bounds: gids in 1..GID_MAX, server lists as `check_servers`, shards in
  0..SHARD_COUNT_MAX-1 (the state checks the cluster's own count when it applies a move),
  query numbers in -1..CONFIG_NUM_MAX (-1 is the latest config).
- A join carries the proposing shardmaster's `Sharding`: the first join applied fixes the
  cluster's, later ones must match it. A join without one (as the previous version logged
  them) means the course layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..kvproto import SHARD_COUNT_MAX, Sharding
from ._config import CONFIG_NUM_MAX, check_gid, check_servers, is_int

OP_NAMES = ("join", "leave", "move", "query")


@dataclass(frozen=True, slots=True)
class JoinOp:
    """Add group `gid` with its `servers` and rebalance."""

    gid: int
    servers: tuple[str, ...]
    sharding: Sharding | None = None

    def to_log(self) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "join", "gid": self.gid, "servers": list(self.servers)}
        if self.sharding is not None:
            op["sharding"] = self.sharding.to_wire()
        return op


@dataclass(frozen=True, slots=True)
class LeaveOp:
    """Remove group `gid` and rebalance."""

    gid: int

    def to_log(self) -> dict[str, Any]:
        return {"op": "leave", "gid": self.gid}


@dataclass(frozen=True, slots=True)
class MoveOp:
    """Put `shard` on group `gid`."""

    shard: int
    gid: int

    def to_log(self) -> dict[str, Any]:
        return {"op": "move", "shard": self.shard, "gid": self.gid}


@dataclass(frozen=True, slots=True)
class QueryOp:
    """Config `num` (-1 for the latest)."""

    num: int

    def to_log(self) -> dict[str, Any]:
        return {"op": "query", "num": self.num}


ShardmasterOp = JoinOp | LeaveOp | MoveOp | QueryOp


def _field(args: Mapping[Any, Any], name: str, op_name: str) -> object:
    if name not in args:
        raise ValueError(f"{op_name}: missing field {name!r}")
    return args[name]


def _shard(value: object, op_name: str) -> int:
    if not is_int(value):
        raise ValueError(f"{op_name}: shard must be an int, got {type(value).__name__}")
    assert isinstance(value, int)
    if not 0 <= value < SHARD_COUNT_MAX:
        raise ValueError(f"{op_name}: shard must be in 0..{SHARD_COUNT_MAX - 1}, got {value}")
    return value


def config_num(value: object, op_name: str = "query") -> int:
    """`value` as a config number to query: -1 (latest) up to CONFIG_NUM_MAX.

    Raises:
        ValueError: not an int, or out of bounds.
    """
    if not is_int(value):
        raise ValueError(f"{op_name}: num must be an int, got {type(value).__name__}")
    assert isinstance(value, int)
    if not -1 <= value <= CONFIG_NUM_MAX:
        raise ValueError(f"{op_name}: num must be in -1..{CONFIG_NUM_MAX}, got {value}")
    return value


def build_op(op_name: str, args: object, sharding: Sharding | None = None) -> ShardmasterOp:
    """The op a caller asked for, built from validated fields only.

    Args:
        op_name: "join", "leave", "move" or "query".
        args: the call's arguments as decoded from the wire.
        sharding: the proposing shardmaster's setting, carried by a join.

    Raises:
        ValueError: unknown op, arguments not a map, or a field missing or out of bounds.
    """
    if op_name not in OP_NAMES:
        raise ValueError(f"unknown shardmaster op {op_name!r}")
    if not isinstance(args, Mapping):
        raise ValueError(f"{op_name}: arguments must be a map, got {type(args).__name__}")
    if op_name == "query":
        return QueryOp(config_num(_field(args, "num", op_name), op_name))
    gid = check_gid(_field(args, "gid", op_name), op_name)
    if op_name == "join":
        servers = check_servers(_field(args, "servers", op_name), f"{op_name} {gid}")
        return JoinOp(gid, servers, sharding)
    if op_name == "leave":
        return LeaveOp(gid)
    return MoveOp(_shard(_field(args, "shard", op_name), op_name), gid)
