"""The replicated state machine of one shardkv replica group.

Every replica of group `gid` applies the same ops in the same (Paxos log) order, so all hold
the same state and give the same replies; nothing here reads a clock, a file or a socket.
Rules:

- **Ownership by log position.** A client op on a key is served only if the key's shard is
  owned by `gid` in the current config and is present (not `waiting`); otherwise it gets
  ``ErrWrongGroup``. What "current" means is decided by the reconfig ops before it in the log.
- **At-most-once.** Each present shard has a duplicate table, client id -> highest sequence
  number of a put/append applied to that shard. A put/append with ``seq <= table[client]``
  is answered OK without being applied again. A get is always executed and never recorded:
  no reply value is ever stored, so each value is held once.
- **One reconfig at a time, in order.** ``reconfig`` to config ``n + 1`` applies only while
  at config ``n`` with nothing `waiting`. Then: a shard lost moves (not copied) into the
  handoff store under ``(n, shard)``; a shard gained from gid 0 starts empty; a shard gained
  from another group goes into `waiting` until an ``install`` brings its data.
- **Handoff.** Handoff ``(n, shard)`` is the shard exactly as it stood when this group moved
  past config ``n``; no op can change it afterwards, so every replica that applied the
  reconfig holds the same bytes and may serve a pull from local state (`handoff`).
- **Install** (config ``n`` = current, shard waiting) stores the pulled data and merges the
  pulled duplicate table (max seq per client), so an op applied at the old owner is not
  applied again here. It records a pending drop for the old owner.
- **Drop.** ``drop (n, shard)`` deletes handoff ``(n, shard)``: the new owner has it.
  Idempotent; the new owner sends it only after installing.
- **Pending drops, driven by idempotent retries.** For each `pending_drops()` entry the
  server asks the old group (servers listed in the entry) to drop ``(config_num, shard)``;
  the old group proposes ``drop`` and answers once it is applied (a retry after that is a
  no-op there). On an OK answer the server proposes ``dropped_ack (config_num, shard)``,
  which removes the entry; a lost answer or a crash only means one more harmless retry.
- A bad op (not a map, unknown op, wrong field types, a key outside its shard) gets
  ``ErrBadOp`` and changes nothing; `apply` never raises on input.

Replies (``"err"`` is always present):

================  =============================================================
``OK``            applied (get also has ``"value"``, "" for a missing key)
``ErrWrongGroup`` client op on a shard not owned or still waiting
``ErrStale``      reconfig/install already done or for a config already passed
``ErrNotReady``   reconfig for a config beyond the next, or shards still waiting;
                  install for a config not reached yet
``ErrBadOp``      malformed op (``"message"`` says why)
================  =============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..shardmaster import SHARD_COUNT, Config, check_gid, check_servers, is_int
from ._keys import key_to_shard

OK = "OK"
ERR_WRONG_GROUP = "ErrWrongGroup"
ERR_STALE = "ErrStale"
ERR_NOT_READY = "ErrNotReady"
ERR_BAD_OP = "ErrBadOp"

SNAPSHOT_VERSION = 1
"""Format version of `ShardKVState.snapshot()`; `restore` refuses any other."""

SEQ_BYTES = 8
"""Bytes counted per duplicate-table entry for its sequence number in `live_bytes`."""

ShardData = dict[str, str]
DedupTable = dict[str, int]


class ShardPull(NamedTuple):
    """A waiting shard to fetch: ask group `gid` for its handoff ``(config_num, shard)``.

    `config_num` is the previous config (current - 1); the group's servers are in
    `ShardKVState.previous_config.groups[gid]`.
    """

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


def _str_field(op: Mapping[str, Any], name: str) -> str:
    value = op.get(name)
    if not isinstance(value, str):
        raise _BadOp(f"{op.get('op')} op: {name} must be a str, got {type(value).__name__}")
    return value


def _int_field(op: Mapping[str, Any], name: str, low: int, high: int | None = None) -> int:
    value = op.get(name)
    if not is_int(value):
        raise _BadOp(f"{op.get('op')} op: {name} must be an int, got {type(value).__name__}")
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        raise _BadOp(f"{op.get('op')} op: {name} {value} out of range")
    return value


def _check_data(data: object, shard: int, what: str) -> ShardData:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: data must be a map, got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"{what}: data keys and values must be str")
        if key_to_shard(key) != shard:
            raise ValueError(f"{what}: key {key!r} is not in shard {shard}")
    return dict(data)


def _check_dedup(dedup: object, what: str) -> DedupTable:
    if not isinstance(dedup, Mapping):
        raise ValueError(f"{what}: dedup must be a map, got {type(dedup).__name__}")
    for client, seq in dedup.items():
        if not isinstance(client, str):
            raise ValueError(f"{what}: dedup client ids must be str")
        if not is_int(seq) or seq < 0:
            raise ValueError(f"{what}: dedup seq must be an int >= 0, got {seq!r}")
    return dict(dedup)


def _merge_dedup(ours: DedupTable, theirs: DedupTable) -> DedupTable:
    """Per client, the higher of the two sequence numbers."""
    merged = dict(ours)
    for client, seq in theirs.items():
        merged[client] = max(seq, merged.get(client, seq))
    return merged


def _shard_bytes(data: ShardData, dedup: DedupTable) -> int:
    return sum(len(k) + len(v) for k, v in data.items()) + sum(
        len(client) + SEQ_BYTES for client in dedup
    )


class ShardKVState:
    """Applied state of replica group `gid`; ops in, replies out, no I/O.

    Args:
        gid: this replica group's id (positive).
    """

    __slots__ = (
        "_gid",
        "_config",
        "_previous_config",
        "_shards",
        "_waiting",
        "_handoffs",
        "_drops",
        "_live_bytes",
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

    # -- read-only views ---------------------------------------------------------------

    @property
    def gid(self) -> int:
        """This replica group's id."""
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

    def shard_data(self, shard: int) -> Mapping[str, str] | None:
        """Copy of a present shard's data; None if the shard is not present here."""
        entry = self._shards.get(shard)
        return None if entry is None else dict(entry[0])

    def handoff_keys(self) -> list[tuple[int, int]]:
        """The ``(config_num, shard)`` handoffs held, sorted."""
        return sorted(self._handoffs)

    def handoff(self, config_num: int, shard: int) -> tuple[ShardData, DedupTable] | None:
        """Copy of the shard as this group left it when moving past `config_num`.

        None unless this group owned `shard` in `config_num`, has moved past it, and the new
        owner has not dropped it yet: a pull asked too early (or of a lagging replica) gets
        None and must retry, possibly at another replica.
        """
        entry = self._handoffs.get((config_num, shard))
        if entry is None:
            return None
        assert config_num < self._config.num
        return dict(entry[0]), dict(entry[1])

    def pending_pulls(self) -> list[ShardPull]:
        """The waiting shards, each with the group and config to pull it from, by shard."""
        if not self._waiting:
            return []
        previous = self._previous_config
        assert previous is not None
        return [
            ShardPull(shard, previous.num, previous.shards[shard])
            for shard in sorted(self._waiting)
        ]

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
            "live_bytes": self._live_bytes,
        }

    def live_bytes(self) -> int:
        """Approximate bytes of state: keys and values (as characters) of present shards and
        handoffs, plus duplicate-table entries. Kept up to date on every change."""
        return self._live_bytes

    # -- applying ops --------------------------------------------------------------------

    def apply(self, op: object) -> dict[str, Any]:
        """Apply one decided op and return its reply (see the module docstring).

        Never raises for a bad op and changes nothing when it rejects one.
        """
        try:
            if not isinstance(op, Mapping):
                raise _BadOp(f"op must be a map, got {type(op).__name__}")
            name = op.get("op")
            if name in ("get", "put", "append"):
                return self._client_op(op, name)
            if name == "reconfig":
                return self._reconfig(op)
            if name == "install":
                return self._install(op)
            if name == "drop":
                return self._drop(op)
            if name == "dropped_ack":
                return self._dropped_ack(op)
            raise _BadOp(f"unknown op {name!r}")
        except _BadOp as bad:
            return {"err": ERR_BAD_OP, "message": str(bad)}

    def _client_op(self, op: Mapping[str, Any], name: str) -> dict[str, Any]:
        key = _str_field(op, "key")
        if name != "get":
            value = _str_field(op, "value")
            client = _str_field(op, "client")
            seq = _int_field(op, "seq", 0)
        shard = key_to_shard(key)
        entry = self._shards.get(shard)
        if entry is None:
            return {"err": ERR_WRONG_GROUP}
        data, dedup = entry
        if name == "get":
            return {"err": OK, "value": data.get(key, "")}
        last = dedup.get(client)
        if last is not None and seq <= last:
            return {"err": OK}
        old = data.get(key)
        new = value if name == "put" or old is None else old + value
        data[key] = new
        dedup[client] = seq
        if old is None:
            self._live_bytes += len(key) + len(new)
        else:
            self._live_bytes += len(new) - len(old)
        if last is None:
            self._live_bytes += len(client) + SEQ_BYTES
        return {"err": OK}

    def _reconfig(self, op: Mapping[str, Any]) -> dict[str, Any]:
        try:
            config = Config.from_wire(op.get("config"))
        except ValueError as error:
            raise _BadOp(f"reconfig op: {error}") from None
        current = self._config
        if config.num <= current.num:
            return {"err": ERR_STALE}
        if config.num > current.num + 1 or self._waiting:
            return {"err": ERR_NOT_READY}
        for shard in range(SHARD_COUNT):
            was = current.shards[shard] == self._gid
            now = config.shards[shard] == self._gid
            if was and not now:
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
        shard = _int_field(op, "shard", 0, SHARD_COUNT - 1)
        try:
            data = _check_data(op.get("data"), shard, "install op")
            dedup = _check_dedup(op.get("dedup"), "install op")
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
        # Merge: the highest seq seen for a client wins. A waiting shard has no table here
        # (ops on it were refused), so today this is the pulled table itself.
        merged = _merge_dedup({}, dedup)
        self._waiting.discard(shard)
        self._shards[shard] = (data, merged)
        self._live_bytes += _shard_bytes(data, merged)
        self._drops[(previous.num, shard)] = ShardDrop(
            shard, previous.num, old_gid, previous.groups[old_gid]
        )
        self._check_invariants()
        return {"err": OK}

    def _drop(self, op: Mapping[str, Any]) -> dict[str, Any]:
        config_num = _int_field(op, "config_num", 0)
        shard = _int_field(op, "shard", 0, SHARD_COUNT - 1)
        entry = self._handoffs.pop((config_num, shard), None)
        if entry is not None:
            self._live_bytes -= _shard_bytes(*entry)
        return {"err": OK}

    def _dropped_ack(self, op: Mapping[str, Any]) -> dict[str, Any]:
        config_num = _int_field(op, "config_num", 0)
        shard = _int_field(op, "shard", 0, SHARD_COUNT - 1)
        self._drops.pop((config_num, shard), None)
        return {"err": OK}

    def _check_invariants(self) -> None:
        owned = self._config.shards_of(self._gid)
        assert self._waiting <= owned
        assert set(self._shards) | self._waiting == owned
        assert not set(self._shards) & self._waiting
        assert all(num < self._config.num for num, _ in self._handoffs)
        if self._previous_config is None:
            assert self._config.num == 0
        else:
            assert self._previous_config.num == self._config.num - 1

    def recount_live_bytes(self) -> int:
        """`live_bytes` computed from scratch (for checks; O(state size))."""
        entries = list(self._shards.values()) + list(self._handoffs.values())
        return sum(_shard_bytes(data, dedup) for data, dedup in entries)

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Exactly the state needed to resume applying, as plain CBOR-able data.

        Each value appears once; the maps are copies, so later ops do not change it.
        """
        previous = self._previous_config
        return {
            "version": SNAPSHOT_VERSION,
            "gid": self._gid,
            "config": self._config.to_wire(),
            "previous_config": None if previous is None else previous.to_wire(),
            "shards": [
                [shard, dict(data), dict(dedup)]
                for shard, (data, dedup) in sorted(self._shards.items())
            ],
            "waiting": sorted(self._waiting),
            "handoffs": [
                [num, shard, dict(data), dict(dedup)]
                for (num, shard), (data, dedup) in sorted(self._handoffs.items())
            ],
            "drops": [
                [drop.shard, drop.config_num, drop.gid, list(drop.servers)]
                for drop in self.pending_drops()
            ],
        }

    @classmethod
    def restore(cls, snapshot: object) -> ShardKVState:
        """Rebuild the state `snapshot()` captured.

        Raises:
            ValueError: `snapshot` is not one this version wrote or breaks the state's rules.
        """
        try:
            return cls._restore(snapshot)
        except (TypeError, KeyError, IndexError) as error:
            raise ValueError(f"shardkv snapshot malformed: {error!r}") from None

    @classmethod
    def _restore(cls, snapshot: object) -> ShardKVState:
        if not isinstance(snapshot, Mapping):
            raise ValueError(f"shardkv snapshot must be a map, got {type(snapshot).__name__}")
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"shardkv snapshot version {snapshot.get('version')!r} unknown")
        state = cls(snapshot["gid"])
        state._config = Config.from_wire(snapshot["config"])
        if snapshot["previous_config"] is not None:
            state._previous_config = Config.from_wire(snapshot["previous_config"])
        for shard, data, dedup in snapshot["shards"]:
            _check_shard_number(shard)
            if shard in state._shards:
                raise ValueError(f"shardkv snapshot: shard {shard} appears twice")
            state._shards[shard] = (
                _check_data(data, shard, "snapshot shard"),
                _check_dedup(dedup, "snapshot shard"),
            )
        for shard in snapshot["waiting"]:
            _check_shard_number(shard)
            state._waiting.add(shard)
        for num, shard, data, dedup in snapshot["handoffs"]:
            _check_shard_number(shard)
            if not is_int(num) or not 0 <= num < state._config.num:
                raise ValueError(f"shardkv snapshot: handoff config {num!r} out of range")
            state._handoffs[(num, shard)] = (
                _check_data(data, shard, "snapshot handoff"),
                _check_dedup(dedup, "snapshot handoff"),
            )
        for shard, num, gid, servers in snapshot["drops"]:
            _check_shard_number(shard)
            if not is_int(num) or not 0 <= num < state._config.num:
                raise ValueError(f"shardkv snapshot: drop config {num!r} out of range")
            state._drops[(num, shard)] = ShardDrop(
                shard,
                num,
                check_gid(gid, "snapshot drop"),
                check_servers(servers, "snapshot drop"),
            )
        state._live_bytes = state.recount_live_bytes()
        state._check_restored()
        return state

    def _check_restored(self) -> None:
        """The invariants `_check_invariants` asserts, as errors: the input is not ours."""
        owned = self._config.shards_of(self._gid)
        present = set(self._shards)
        if present & self._waiting or present | self._waiting != owned:
            raise ValueError("shardkv snapshot: present and waiting shards do not match config")
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


def _check_shard_number(shard: object) -> None:
    if not (isinstance(shard, int) and is_int(shard) and 0 <= shard < SHARD_COUNT):
        raise ValueError(f"shardkv snapshot: shard {shard!r} out of range")
