"""The replicated state machine of one shardkv replica group.

Every replica of group `gid` applies the same ops in the same (Paxos log) order, so all hold
the same state and give the same replies; nothing here reads a clock, a file or a socket.
Rules:

- **Ownership by log position.** A client op on a key is served only if the key's shard
  (`Config.shard_of`, the cluster's `Sharding`) is owned by `gid` in the current config and
  is present (not `waiting`); otherwise it gets ``ErrWrongGroup``.
- **At-most-once.** Each present shard has a duplicate table (`_tables`): client id -> its
  last write applied to that shard and that write's result. A write with ``seq`` equal to
  the table's is answered with the stored result without being applied again; an older one
  (a stale retry nobody waits for) changes nothing either. A get is never recorded.
- **Values.** A get of an absent key answers ``ErrNoKey``; an empty value is ``b""``. A
  delete answers whether the key existed; a compare-and-set writes only if the value is the
  expected one (or the key is absent, for an expected None) and answers whether it wrote.
- **One reconfig at a time, in order.** ``reconfig`` to config ``n + 1`` applies only while
  at config ``n`` with nothing `waiting`. A shard lost moves into the handoff store under
  ``(n, shard)``; a shard gained from gid 0 starts empty; one gained from another group waits
  for an ``install``. The sharding never changes after config 0 (which has no owner).
- **Handoff.** Handoff ``(n, shard)`` is the shard as it stood when this group moved past
  config ``n``; every replica that applied the reconfig holds the same bytes (`handoff`).
- **Install** stores the pulled data and merges the pulled duplicate table, so a write
  applied at the old owner is answered, not applied again, here; it records a pending drop.
- **Drop** deletes a handoff, keeping its grant (idempotent); ``dropped_ack`` clears a pending drop.
- **Grant** gives a handoff to one puller before it is handed out; **forfeit** gives up a
  waiting shard whose source went to a later config; an install may name an older source
  than the previous owner (a reclaim). Why these are safe: `_handback`.
- A bad op gets ``ErrBadOp`` and changes nothing; `apply` never raises on input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..kvproto import SHARD_COUNT_MAX, Append, Cas, Code, Delete, Get, Put, decode_op, is_int
from ..shardmaster import Config, check_gid
from . import _snapshot
from ._handback import Grant, Source, granted_to, source_from_wire
from ._tables import (
    SEQ_BYTES,
    Applied,
    DedupTable,
    ShardData,
    check_data,
    check_dedup,
    merge_dedup,
    shard_bytes,
)

OK = Code.OK
ERR_NO_KEY = Code.NO_KEY
ERR_WRONG_GROUP = Code.WRONG_GROUP
ERR_STALE = Code.STALE
ERR_NOT_READY = Code.NOT_READY
ERR_BAD_OP = Code.BAD_OP

CLIENT_OPS = frozenset({"get", "put", "append", "delete", "cas"})


class ShardPull(NamedTuple):
    """A waiting shard to fetch: ask group `gid` for its handoff ``(config_num, shard)``."""

    shard: int
    config_num: int
    gid: int


class ShardDrop(NamedTuple):
    """An installed shard whose old owner `gid` (at `servers`) may drop handoff
    ``(config_num, shard)``; cleared by a ``dropped_ack`` op."""

    shard: int
    config_num: int
    gid: int
    servers: tuple[str, ...]


class _BadOp(Exception):
    """Raised inside `apply` for a malformed op; turned into an ``ErrBadOp`` reply."""


def _int_field(op: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int:
    value = op.get(name)
    if not is_int(value):
        raise _BadOp(f"{op.get('op')} op: {name} must be an int, got {type(value).__name__}")
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        raise _BadOp(f"{op.get('op')} op: {name} {value} out of range")
    return value


class ShardKVState:
    """Applied state of replica group `gid`; ops in, replies out, no I/O.

    Args:
        gid: this replica group's id (positive).
    """

    __slots__ = (
        "_gid", "_config", "_previous_config", "_shards", "_waiting", "_handoffs", "_drops", "_live_bytes",
        "_grants", "_forfeited",
    )

    def __init__(self, gid: int) -> None:
        check_gid(gid, "ShardKVState")
        self._gid = gid
        self._config = Config.initial()
        self._previous_config: Config | None = None
        # Present shards: owned in the current config and not waiting.
        self._shards: dict[int, tuple[ShardData, DedupTable]] = {}
        self._waiting: set[int] = set()
        self._handoffs: dict[tuple[int, int], tuple[ShardData, DedupTable]] = {}
        self._drops: dict[tuple[int, int], ShardDrop] = {}
        self._live_bytes = 0
        self._grants: dict[tuple[int, int], Grant] = {}
        # Owned in the current config, never installed: its source went to a later config.
        self._forfeited: set[int] = set()

    # -- read-only views ---------------------------------------------------------------

    @property
    def gid(self) -> int:
        return self._gid

    @property
    def config(self) -> Config:
        """The current config (config 0 at start)."""
        return self._config

    @property
    def previous_config(self) -> Config | None:
        """The config before `config` (None at config 0): where waiting shards come from."""
        return self._previous_config

    @property
    def waiting(self) -> frozenset[int]:
        """Shards owned in the current config whose data has not been installed yet."""
        return frozenset(self._waiting)

    @property
    def present_shards(self) -> frozenset[int]:
        """Shards owned in the current config and installed: the ones client ops may use."""
        return frozenset(self._shards)

    def shard_data(self, shard: int) -> Mapping[bytes, bytes] | None:
        """Copy of a present shard's data; None if the shard is not present here."""
        entry = self._shards.get(shard)
        return None if entry is None else dict(entry[0])

    def handoff_keys(self) -> list[tuple[int, int]]:
        """The ``(config_num, shard)`` handoffs held, sorted."""
        return sorted(self._handoffs)

    def handoff(self, config_num: int, shard: int) -> tuple[ShardData, DedupTable] | None:
        """Copy of the shard as this group left it when moving past `config_num`; None until
        then or once dropped (the puller retries, possibly at another replica)."""
        entry = self._handoffs.get((config_num, shard))
        if entry is None:
            return None
        assert config_num < self._config.num
        return dict(entry[0]), dict(entry[1])

    def grant_of(self, config_num: int, shard: int) -> Grant | None:
        """Whom hand-off ``(config_num, shard)`` was granted to, held or dropped since."""
        return self._grants.get((config_num, shard))

    def pending_pulls(self) -> list[ShardPull]:
        """The waiting shards, each with the group and config to pull it from, by shard."""
        if not self._waiting:
            return []
        previous = self._previous_config
        assert previous is not None
        return [ShardPull(shard, previous.num, previous.shards[shard]) for shard in sorted(self._waiting)]

    def pending_drops(self) -> list[ShardDrop]:
        """Installed shards whose old owner has not yet confirmed the drop, sorted."""
        return [self._drops[key] for key in sorted(self._drops)]

    def describe(self) -> dict[str, Any]:
        """A small summary for status displays: config, shards present and in transit."""
        return {
            "config": self._config.num,
            "present": sorted(self._shards),
            "waiting": sorted(self._waiting),
            "handoffs": [list(k) for k in sorted(self._handoffs)],
            "drops": [list(k) for k in sorted(self._drops)],
            "forfeited": sorted(self._forfeited),
            "live_bytes": self._live_bytes,
        }

    def live_bytes(self) -> int:
        """Approximate bytes of state (keys, values, duplicate-table entries of present shards
        and handoffs), kept up to date on every change."""
        return self._live_bytes

    def recount_live_bytes(self) -> int:
        """`live_bytes` computed from scratch (for checks; O(state size))."""
        entries = list(self._shards.values()) + list(self._handoffs.values())
        return sum(shard_bytes(data, dedup) for data, dedup in entries)

    # -- applying ops --------------------------------------------------------------------

    def apply(self, op: object) -> dict[str, Any]:
        """Apply one decided op and return its reply (see the module docstring).

        Never raises for a bad op and changes nothing when it rejects one.
        """
        try:
            if not isinstance(op, Mapping):
                raise _BadOp(f"op must be a map, got {type(op).__name__}")
            name = op.get("op")
            if name in CLIENT_OPS:
                try:
                    return self._client_op(decode_op(op))
                except ValueError as error:
                    raise _BadOp(str(error)) from None
            if name == "reconfig":
                return self._reconfig(op)
            if name == "install":
                return self._install(op)
            if name == "grant":
                return self._grant(op)
            if name == "forfeit":
                return self._forfeit(op)
            if name in ("drop", "dropped_ack"):
                config_num = _int_field(op, "config_num", 0)
                shard = _int_field(op, "shard", 0, SHARD_COUNT_MAX - 1)  # unknown: a no-op
                if name == "drop":
                    entry = self._handoffs.pop((config_num, shard), None)
                    # The grant stays: a puller skipped by a reclaim learns from it to forfeit.
                    if entry is not None:
                        self._live_bytes -= shard_bytes(*entry)
                else:
                    self._drops.pop((config_num, shard), None)
                return {"err": OK}
            raise _BadOp(f"unknown op {name!r:.80}")
        except _BadOp as bad:
            return {"err": ERR_BAD_OP, "message": str(bad)}

    def _client_op(self, op: Get | Put | Append | Delete | Cas) -> dict[str, Any]:
        entry = self._shards.get(self._config.shard_of(op.key))
        if entry is None:
            return {"err": ERR_WRONG_GROUP}
        data, dedup = entry
        if isinstance(op, Get):
            value = data.get(op.key)
            return {"err": ERR_NO_KEY} if value is None else {"err": OK, "value": value}
        last = dedup.get(op.client)
        if last is not None and op.seq <= last.seq:
            return _duplicate_reply(op, last)
        old = data.get(op.key)
        result: bool | None = None
        new: bytes | None
        if isinstance(op, Put):
            new = op.value
        elif isinstance(op, Append):
            new = op.value if old is None else old + op.value
        elif isinstance(op, Delete):
            new, result = None, old is not None
        else:
            result = old == op.expected
            new = op.new if result else old
        if new is None:
            data.pop(op.key, None)
        else:
            data[op.key] = new
        self._live_bytes += _size(op.key, new) - _size(op.key, old)
        dedup[op.client] = Applied(op.seq, result)
        if last is None:
            self._live_bytes += len(op.client) + SEQ_BYTES
        return _write_reply(op, result)

    def _reconfig(self, op: Mapping[str, Any]) -> dict[str, Any]:
        try:
            config = Config.from_wire(op.get("config"))
        except ValueError as error:
            raise _BadOp(f"reconfig op: {error}") from None
        current = self._config
        if current.num == 0:
            current = Config.initial(config.sharding)  # config 0 owns nothing: any layout
        elif config.sharding != current.sharding:
            raise _BadOp(f"reconfig op: sharding {config.sharding} differs from {current.sharding}")
        if config.num <= current.num:
            return {"err": ERR_STALE}
        if config.num > current.num + 1 or self._waiting:
            return {"err": ERR_NOT_READY}
        for shard in range(config.sharding.count):
            was = current.shards[shard] == self._gid
            now = config.shards[shard] == self._gid
            if was and not now and shard in self._forfeited:
                self._forfeited.discard(shard)  # never held: nothing to hand on
            elif was and not now:
                assert shard in self._shards, "no reconfig while a shard is waiting"
                self._handoffs[(current.num, shard)] = self._shards.pop(shard)
            elif now and not was:
                if current.shards[shard] == 0:
                    self._shards[shard] = ({}, {})
                else:
                    self._waiting.add(shard)
        self._previous_config = current
        self._config = config
        self._check_invariants()
        return {"err": OK}

    def _install(self, op: Mapping[str, Any]) -> dict[str, Any]:
        config_num = _int_field(op, "config_num", 0)
        shard = _int_field(op, "shard", 0, self._config.sharding.count - 1)
        try:
            data = check_data(op.get("data"), shard, self._config.sharding, "install op")
            dedup = check_dedup(op.get("dedup"), "install op")
        except ValueError as error:
            raise _BadOp(str(error)) from None
        if config_num > self._config.num:
            return {"err": ERR_NOT_READY}
        if config_num < self._config.num or shard not in self._waiting:
            return {"err": ERR_STALE}
        previous = self._previous_config
        assert previous is not None
        old_gid = previous.shards[shard]
        assert old_gid not in (0, self._gid)
        source = Source(previous.num, old_gid, previous.groups[old_gid])
        if op.get("source") is not None:
            try:
                source = source_from_wire(op.get("source"))
            except ValueError as error:
                raise _BadOp(f"install op: {error}") from None
            if source.config_num >= previous.num:
                raise _BadOp(f"install op: source config {source.config_num} is not before {previous.num}")
        # A waiting shard has no table here (ops on it were refused): the merge is the
        # pulled table itself, kept as a merge should that ever change.
        merged = merge_dedup({}, dedup)
        self._waiting.discard(shard)
        self._shards[shard] = (data, merged)
        self._live_bytes += shard_bytes(data, merged)
        self._drops[(source.config_num, shard)] = ShardDrop(shard, source.config_num, source.gid, source.servers)
        self._check_invariants()
        return {"err": OK}

    def _grant(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Give handoff ``(config_num, shard)`` to one puller; refuse any other, naming it."""
        config_num = _int_field(op, "config_num", 0)
        shard = _int_field(op, "shard", 0, SHARD_COUNT_MAX - 1)
        grant = Grant(_int_field(op, "gid", 1), _int_field(op, "to_config", config_num + 1))
        if (config_num, shard) not in self._handoffs:
            return {"err": ERR_NOT_READY}
        first = self._grants.setdefault((config_num, shard), grant)
        if first != grant:
            return {"err": ERR_STALE, "granted_to": list(first)}
        return {"err": OK}

    def _forfeit(self, op: Mapping[str, Any]) -> dict[str, Any]:
        """Give up waiting shard `shard`: its source was granted to a config after this one."""
        config_num = _int_field(op, "config_num", 0)
        shard = _int_field(op, "shard", 0, SHARD_COUNT_MAX - 1)
        grant = granted_to(op)
        if grant is None:
            raise _BadOp("forfeit op: granted_to must be [gid, config_num]")
        if config_num != self._config.num or shard not in self._waiting:
            return {"err": ERR_STALE}
        if grant.config_num <= self._config.num:
            raise _BadOp(f"forfeit op: a grant for config {grant.config_num} does not skip {config_num}")
        self._waiting.discard(shard)
        self._forfeited.add(shard)
        self._check_invariants()
        return {"err": OK}

    def _check_invariants(self) -> None:
        owned = self._config.shards_of(self._gid)
        assert self._waiting <= owned
        assert set(self._shards) | self._waiting | self._forfeited == owned
        assert not set(self._shards) & self._waiting
        assert not (set(self._shards) | self._waiting) & self._forfeited
        assert all(num < self._config.num for num, _ in self._handoffs)
        if self._previous_config is None:
            assert self._config.num == 0
        else:
            assert self._previous_config.num == self._config.num - 1

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Exactly the state needed to resume applying, as plain CBOR-able data (copies)."""
        return _snapshot.encode(
            _snapshot.Contents(
                self._gid,
                self._config,
                self._previous_config,
                self._shards,
                frozenset(self._waiting),
                self._handoffs,
                tuple(_snapshot.Drop(*drop) for drop in self.pending_drops()),
                dict(self._grants),
                frozenset(self._forfeited),
            )
        )

    @classmethod
    def restore(cls, snapshot: object) -> ShardKVState:
        """Rebuild the state `snapshot()` captured (or the previous version's snapshot).

        Raises:
            ValueError: not a snapshot either version wrote, or one breaking the state's rules.
        """
        contents = _snapshot.decode(snapshot)
        state = cls(contents.gid)
        state._config = contents.config
        state._previous_config = contents.previous_config
        state._shards = {shard: (dict(d), dict(t)) for shard, (d, t) in contents.shards.items()}
        state._waiting = set(contents.waiting)
        state._handoffs = {key: (dict(d), dict(t)) for key, (d, t) in contents.handoffs.items()}
        state._drops = {(drop.config_num, drop.shard): ShardDrop(*drop) for drop in contents.drops}
        state._grants = {key: Grant(*grant) for key, grant in contents.grants.items()}
        state._forfeited = set(contents.forfeited)
        state._live_bytes = state.recount_live_bytes()
        state._check_restored()
        return state

    def _check_restored(self) -> None:
        """The invariants `_check_invariants` asserts, as errors: the input is not ours."""
        owned = self._config.shards_of(self._gid)
        present = set(self._shards)
        forfeited = self._forfeited
        if present & self._waiting or (present | self._waiting) & forfeited or present | self._waiting | forfeited != owned:
            raise ValueError("shardkv snapshot: present, waiting and forfeited shards do not match config")
        previous = self._previous_config
        if (previous is None) != (self._config.num == 0):
            raise ValueError("shardkv snapshot: previous config missing or unexpected")
        if previous is not None:
            if previous.num != self._config.num - 1:
                raise ValueError("shardkv snapshot: previous config is not current - 1")
            for shard in self._waiting:
                if previous.shards[shard] in (0, self._gid):
                    raise ValueError(f"shardkv snapshot: waiting shard {shard} has no source")
        elif self._waiting:
            raise ValueError("shardkv snapshot: shards waiting at config 0")
        self._check_invariants()


def _size(key: bytes, value: bytes | None) -> int:
    return 0 if value is None else len(key) + len(value)


def _write_reply(op: Put | Append | Delete | Cas, result: bool | None) -> dict[str, Any]:
    if isinstance(op, Delete):
        return {"err": OK, "existed": bool(result)}
    if isinstance(op, Cas):
        return {"err": OK, "written": bool(result)}
    return {"err": OK}


def _duplicate_reply(op: Put | Append | Delete | Cas, last: Applied) -> dict[str, Any]:
    """The reply to a write already applied: the first reply again for a retry of the last
    write; for an older one (nobody waits for it) OK, or ErrStale where a result is due."""
    if op.seq == last.seq:
        return _write_reply(op, last.result)
    if isinstance(op, Delete | Cas):
        return {"err": ERR_STALE, "message": "superseded by a later write of this client"}
    return {"err": OK}
