"""The shardmaster's replicated state machine: Join / Leave / Move / Query over configs.

Every replica applies the same ops in the same (Paxos log) order and so holds the same
config history and gives the same replies. Rules:

- Configs are numbered from 0 (`Config.initial()`); each op that changes the assignment or
  the groups appends exactly one config numbered one above the latest.
- The first ``join`` applied fixes the cluster's `Sharding` (the op's, the course layout if it
  has none): config 0 is remade with it and every later config keeps it. A later join of a
  new gid naming another sharding is refused (a shardmaster started with the wrong setting).
- ``join`` of a new gid adds the group and rebalances. Join of a gid already present changes
  nothing (its server list stays as first joined, no new config): the course's repeated Join
  must leave the groups and their servers as they were.
- ``leave`` removes the group and rebalances; leave of a gid not present changes nothing. A
  gid that left may join again.
- ``move`` puts exactly one shard (in 0..count-1) on a joined gid and does not rebalance (a later Join or
  Leave may undo it). Move to the shard's current owner changes nothing and makes no config.
- ``query`` returns config `num`; -1, any negative number, or a number above the latest give
  the latest. It is an op too, so a replica answers it only at its log position (fresh).
- A bad op (not a map, unknown op, wrong types, gid <= 0, shard out of range, move to a gid
  not joined) gets an error reply and changes nothing; `apply` never raises on input.

Replies, in the key/value protocol's convention (``"err"``, a `Code`):
``{"err": "OK", "num": <latest num>, "changed": bool}`` for join / leave / move,
``{"err": "OK", "config": <Config wire>}`` for query, and
``{"err": <code>, "message": str}`` for a bad op.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..kvproto import COURSE_SHARDING, Code, Sharding
from ._config import Config, check_gid, check_servers, is_int
from ._rebalance import rebalance

ERROR_BAD_OP = Code.BAD_OP
"""The op is malformed: not a map, unknown name, wrong field types, bad gid or shard."""

ERROR_UNKNOWN_GROUP = Code.UNKNOWN_GROUP
"""Move names a gid that is not joined in the latest config."""

SNAPSHOT_VERSION = 1
"""Format version of `ShardmasterState.snapshot()`; `restore` refuses any other."""


class _BadOp(Exception):
    """Raised inside `apply` for a malformed op; turned into an error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _field(op: Mapping[str, Any], name: str) -> object:
    if name not in op:
        raise _BadOp(ERROR_BAD_OP, f"{op.get('op')!r} op lacks field {name!r}")
    return op[name]


def _gid_field(op: Mapping[str, Any]) -> int:
    try:
        return check_gid(_field(op, "gid"), f"{op['op']} op")
    except ValueError as error:
        raise _BadOp(ERROR_BAD_OP, str(error)) from None


class ShardmasterState:
    """Config history of one shardmaster replica; ops in, replies out, no I/O.

    Args:
        sharding: config 0's, until the first join fixes the cluster's.
    """

    __slots__ = ("_configs",)

    def __init__(self, sharding: Sharding = COURSE_SHARDING) -> None:
        self._configs: list[Config] = [Config.initial(sharding)]

    @property
    def latest(self) -> Config:
        """The newest config."""
        return self._configs[-1]

    def query(self, num: int) -> Config:
        """Config `num`, or the latest for a negative num or one above the latest."""
        if num < 0 or num >= len(self._configs):
            return self.latest
        return self._configs[num]

    def apply(self, op: object) -> dict[str, Any]:
        """Apply one decided op and return its reply (see the module docstring).

        Never raises for a bad op: the log may hold anything a client sent.
        """
        try:
            if not isinstance(op, Mapping):
                raise _BadOp(ERROR_BAD_OP, f"op must be a map, got {type(op).__name__}")
            name = op.get("op")
            if name == "join":
                return self._join(op)
            if name == "leave":
                return self._leave(op)
            if name == "move":
                return self._move(op)
            if name == "query":
                return self._query(op)
            raise _BadOp(ERROR_BAD_OP, f"unknown op {name!r}")
        except _BadOp as bad:
            return {"err": bad.code, "message": bad.message}

    def _join(self, op: Mapping[str, Any]) -> dict[str, Any]:
        gid = _gid_field(op)
        try:
            servers = check_servers(_field(op, "servers"), f"join op gid {gid}")
        except ValueError as error:
            raise _BadOp(ERROR_BAD_OP, str(error)) from None
        try:
            sharding = Sharding.from_wire(op.get("sharding"))
        except ValueError as error:
            raise _BadOp(ERROR_BAD_OP, f"join op: {error}") from None
        latest = self.latest
        if gid in latest.groups:
            return self._done(changed=False)
        if latest.num == 0:
            self._configs[0] = latest = Config.initial(sharding)
        elif sharding != latest.sharding:
            raise _BadOp(
                ERROR_BAD_OP,
                f"join op: this cluster has {latest.sharding}; the shardmaster asked for {sharding}",
            )
        groups = dict(latest.groups)
        groups[gid] = servers
        shards = rebalance(latest.shards, groups)
        self._push(Config(latest.num + 1, shards, groups, latest.sharding))
        return self._done(changed=True)

    def _leave(self, op: Mapping[str, Any]) -> dict[str, Any]:
        gid = _gid_field(op)
        latest = self.latest
        if gid not in latest.groups:
            return self._done(changed=False)
        groups = dict(latest.groups)
        del groups[gid]
        self._push(Config(latest.num + 1, rebalance(latest.shards, groups), groups, latest.sharding))
        return self._done(changed=True)

    def _move(self, op: Mapping[str, Any]) -> dict[str, Any]:
        shard = _field(op, "shard")
        if not is_int(shard):
            raise _BadOp(ERROR_BAD_OP, f"move op: shard must be an int, got {type(shard).__name__}")
        assert isinstance(shard, int)
        gid = _gid_field(op)
        latest = self.latest
        count = latest.sharding.count
        if not 0 <= shard < count:
            raise _BadOp(ERROR_BAD_OP, f"move op: shard must be in 0..{count - 1}, got {shard}")
        if gid not in latest.groups:
            raise _BadOp(ERROR_UNKNOWN_GROUP, f"move op: gid {gid} is not joined")
        if latest.shards[shard] == gid:
            return self._done(changed=False)
        shards = list(latest.shards)
        shards[shard] = gid
        self._push(Config(latest.num + 1, tuple(shards), latest.groups, latest.sharding))
        return self._done(changed=True)

    def _query(self, op: Mapping[str, Any]) -> dict[str, Any]:
        num = _field(op, "num")
        if not is_int(num):
            raise _BadOp(ERROR_BAD_OP, f"query op: num must be an int, got {type(num).__name__}")
        assert isinstance(num, int)
        return {"err": Code.OK, "config": self.query(num).to_wire()}

    def _push(self, config: Config) -> None:
        assert config.num == len(self._configs)
        assert config.sharding == self.latest.sharding
        assert not config.groups or all(gid in config.groups for gid in config.shards)
        self._configs.append(config)

    def _done(self, *, changed: bool) -> dict[str, Any]:
        return {"err": Code.OK, "num": self.latest.num, "changed": changed}

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain CBOR-able data: ``{"version": 1, "configs": [wire, ...]}``."""
        return {"version": SNAPSHOT_VERSION, "configs": [c.to_wire() for c in self._configs]}

    @classmethod
    def restore(cls, snapshot: object) -> ShardmasterState:
        """Rebuild the state `snapshot()` captured.

        Raises:
            ValueError: `snapshot` is not one this version wrote, or its configs are invalid
                or not numbered 0, 1, 2, ...
        """
        if not isinstance(snapshot, Mapping):
            raise ValueError(f"shardmaster snapshot must be a map, got {type(snapshot).__name__}")
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"shardmaster snapshot version {snapshot.get('version')!r} unknown")
        wires = snapshot.get("configs")
        if not isinstance(wires, list | tuple) or not wires:
            raise ValueError("shardmaster snapshot: configs must be a non-empty list")
        configs = [Config.from_wire(wire) for wire in wires]
        for index, config in enumerate(configs):
            if config.num != index:
                raise ValueError(f"shardmaster snapshot: config {index} has num {config.num}")
        if configs[0] != Config.initial(configs[0].sharding):
            raise ValueError("shardmaster snapshot: config 0 is not the initial config")
        if any(config.sharding != configs[0].sharding for config in configs):
            raise ValueError("shardmaster snapshot: configs disagree on the sharding")
        state = cls()
        state._configs = configs
        return state
