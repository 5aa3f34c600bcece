"""No decided value can stop a replica: bad entries apply as no-ops, bad ops get error replies.

The apply loop is driven by a scripted peer whose log holds the values under test; a
"restart" is a new state machine replaying the same log. The real machines (shardmaster,
shardkv) are used for the property tests. The last tests measure how deep a value nested
to the wire's limit ends up in a journal record and a snapshot, and read it back after a
reopen of a real journal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import journal as journal_pkg
from diskv_trio.net import WIRE_DEPTH_MAX
from diskv_trio.paxos import Fate, PaxosPeer
from diskv_trio.rsm import ReplicatedStateMachine, ServerStorage, _rsm
from diskv_trio.rsm._entry import NOOP, LogEntry, parse_entry
from diskv_trio.rsm._storage import STORAGE_DEPTH_MAX
from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import ShardmasterState


class ScriptedPeer:
    """A Paxos peer whose log is `values` (all decided); nothing else is ever decided."""

    leader_mode = False  # classic: every replica proposes

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.done_upto = -1

    def min(self) -> int:
        return 0

    def max(self) -> int:
        return len(self.values) - 1

    def status(self, seq: int) -> tuple[Fate, Any]:
        if seq < len(self.values):
            return Fate.DECIDED, self.values[seq]
        return Fate.PENDING, None

    async def wait_decided(self, seq: int) -> Any:
        await trio.sleep_forever()

    def start(self, seq: int, value: Any) -> None:
        pass

    def done(self, seq: int) -> None:
        self.done_upto = seq


class RecordingMachine:
    """Records the ops it applies; raises on an op named "boom" (a machine bug)."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        if op.get("op") == "boom":
            raise KeyError("boom")
        self.ops.append(op)
        return {"err": "OK"}

    def snapshot(self) -> dict[str, Any]:
        return {"ops": self.ops}


class NullStorage:
    def should_compact(self, *, idle: bool) -> bool:
        return False


def entry(*ops: Any) -> dict[str, Any]:
    return {"proposer": "someone", "batch": 1, "ops": list(ops)}


HOSTILE_LOG: list[Any] = [
    entry({"op": "put", "k": 1}),
    {"proposer": "someone", "batch": 2, "ops": 5},  # the value that crashed a replica
    5,
    None,
    {"ops": [{"op": "put", "k": 2}]},  # fields missing
    {"proposer": ["x"], "batch": 1, "ops": []},
    entry("not a map", {"op": "boom"}, {"op": "put", "k": 3}),
    NOOP,
    entry({"op": "put", "k": 4}),
]
GOOD_OPS = [{"op": "put", "k": 1}, {"op": "put", "k": 3}, {"op": "put", "k": 4}]


async def replay(values: list[Any], machine: Any) -> ReplicatedStateMachine:
    """Apply `values` with a fresh machine, as a replica does after a restart."""
    rsm = ReplicatedStateMachine(
        peer=ScriptedPeer(values),  # type: ignore[arg-type]
        machine=machine,
        applied=-1,
        storage=NullStorage(),  # type: ignore[arg-type]
    )
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rsm.run)
            await rsm.wait_applied(len(values) - 1)
            nursery.cancel_scope.cancel()
    return rsm


async def test_hostile_log_applies_as_no_ops_and_error_replies(
    autojump_clock: trio.abc.Clock,
) -> None:
    machine = RecordingMachine()
    rsm = await replay(HOSTILE_LOG, machine)
    assert rsm.applied == len(HOSTILE_LOG) - 1
    assert machine.ops == GOOD_OPS
    # Five values that are not entries, one op that is not a map, one apply that raised.
    assert rsm.bad_values_applied == 7


async def test_restart_and_other_replicas_reach_the_same_state(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Determinism: the same log gives the same state on every replica and every replay."""
    states = []
    for _ in range(3):
        machine = RecordingMachine()
        await replay(HOSTILE_LOG, machine)
        states.append(cbor2.dumps(machine.snapshot()))
    assert states[0] == states[1] == states[2]


async def test_without_the_entry_check_the_old_crash_returns(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check bites: trusting the decided value's shape (as before) dies on `ops = 5`."""

    def trusting(value: Any) -> LogEntry:
        return LogEntry(value["proposer"], value["batch"], tuple(value["ops"]))

    monkeypatch.setattr(_rsm, "parse_entry", trusting)
    with pytest.raises(BaseException) as info:
        await replay([{"proposer": "p", "batch": 2, "ops": 5}], RecordingMachine())
    assert (
        info.group_contains(TypeError)
        if isinstance(info.value, BaseExceptionGroup)
        else (isinstance(info.value, TypeError))
    )


async def test_rate_limited_error_log(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await replay([5] * 100, RecordingMachine())
    lines = [r for r in caplog.records if r.name == "diskv.rsm" and r.levelname == "ERROR"]
    assert 0 < len(lines) <= 10


# ---- property tests: random decided values never raise ------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64) + 1, max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), children, max_size=4),
    ),
    max_leaves=20,
)
op_names = st.sampled_from(
    [
        "join",
        "leave",
        "move",
        "query",
        "get",
        "put",
        "append",
        "reconfig",
        "install",
        "drop",
        "dropped_ack",
        "x",
    ]
)
op_like = st.dictionaries(
    st.sampled_from(
        [
            "op",
            "gid",
            "servers",
            "shard",
            "num",
            "key",
            "value",
            "client",
            "seq",
            "config",
            "config_num",
            "data",
            "dedup",
        ]
    ),
    values,
    max_size=6,
).flatmap(lambda op: op_names.map(lambda name: {**op, "op": name}))
decided_values = st.one_of(
    values,
    st.builds(
        lambda proposer, batch, ops: {"proposer": proposer, "batch": batch, "ops": ops},
        values,
        values,
        st.one_of(values, st.lists(st.one_of(op_like, values), max_size=6)),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(decided_values, min_size=1, max_size=4))
def test_random_decided_values_never_stop_the_apply_loop(log_values: list[Any]) -> None:
    wire_values = [cbor2.loads(cbor2.dumps(v)) for v in log_values]  # as a peer decodes them

    async def main() -> None:
        for machine in (ShardmasterState(), ShardKVState(1), RecordingMachine()):
            rsm = await replay(wire_values, machine)
            assert rsm.applied == len(wire_values) - 1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@given(values)
def test_parse_entry_returns_an_entry_or_refuses(value: Any) -> None:
    try:
        parsed = parse_entry(value)
    except ValueError:
        return
    assert isinstance(parsed, LogEntry)


# ---- storage depth: a value at the wire's limit is journalled and read back --------------


def nest(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


async def test_value_at_wire_depth_survives_journal_snapshot_and_restart(
    short_tmp: Path,
) -> None:
    """Measured: the value sits at depth + 2 in its records and + 4 in the snapshot; both
    decode within STORAGE_DEPTH_MAX, before and after a snapshot, across a reopen."""
    deep = nest(WIRE_DEPTH_MAX)
    assert depth_of(deep) == WIRE_DEPTH_MAX

    class Alone:
        async def call(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a group of one calls nobody")

    directory = short_tmp / "j"
    for round_ in range(3):  # write + journal, then snapshot, then reopen and read back
        with journal_pkg.Journal.open(directory) as opened:
            storage = ServerStorage(opened)
            state = storage.loaded_state() or {}
            records = list(storage.paxos_records())
            restored = PaxosPeer.restore(state.get("paxos"), records)
            async with trio.open_nursery() as nursery:
                peer = PaxosPeer(
                    peer_count=1, me=0, storage=storage, transport=Alone(), restored=restored
                )
                await nursery.start(peer.run)
                if round_ == 0:
                    peer.start(0, deep)
                    assert await peer.wait_decided(0) == deep
                    await storage.sync()
                elif round_ == 1:
                    assert peer.status(0) == (Fate.DECIDED, deep)  # replayed from the journal
                    record_depth = max(depth_of({"px": record}) for record in records)
                    assert record_depth == WIRE_DEPTH_MAX + 2
                    await storage.snapshot({"paxos": peer.snapshot_state(), "applied": 0})
                else:
                    assert peer.status(0) == (Fate.DECIDED, deep)  # from the snapshot
                    snapshot_depth = depth_of(cbor2.loads(opened.loaded_snapshot[1]))
                    assert snapshot_depth == WIRE_DEPTH_MAX + 4
                    assert snapshot_depth + 2 < STORAGE_DEPTH_MAX  # + a log entry's wrapping
                nursery.cancel_scope.cancel()
