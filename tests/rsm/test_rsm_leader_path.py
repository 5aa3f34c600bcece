"""Ops through the stable leader: refusals, step-downs answered only when certain, reads.

A scripted Paxos peer in leader mode stands in for the group: the test decides which
value each instance gets and when this replica stops leading. The rule under test: an op
answered `NotLeaderError` was certainly never applied, so a client may retry it at the new
leader; breaking the rule (answering at once on a step-down) is shown to let an op be both
refused and applied.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from trio_util import AsyncValue

from diskv_trio.paxos import Fate, PaxosNotLeader
from diskv_trio.rsm import NotLeaderError, ReplicatedStateMachine, _leader_path
from diskv_trio.rsm._entry import NOOP


class LeaderPeer:
    """A peer in leader mode whose instances the test decides."""

    leader_mode = True

    def __init__(self, *, leading: bool) -> None:
        self.leading = AsyncValue(leading)
        self.led_upto = -1
        self.proposed: list[Any] = []  # instance i holds proposed[i], until decided otherwise
        self.decided: dict[int, Any] = {}
        self.changed = trio.Event()
        self.read_index = -1
        self.classic_starts: list[int] = []

    def leader_hint(self) -> int:
        return 2

    def propose(self, value: Any) -> bool:
        if not self.leading.value:
            return False
        self.proposed.append(value)
        return True

    def step_down(self) -> None:
        self.led_upto = len(self.proposed) - 1
        self.leading.value = False

    def decide(self, seq: int, value: Any) -> None:
        self.decided[seq] = value
        self.changed.set()
        self.changed = trio.Event()

    async def read(self) -> int:
        if not self.leading.value:
            raise PaxosNotLeader(self.leader_hint())
        return self.read_index

    def min(self) -> int:
        return 0

    def max(self) -> int:
        return max(self.decided, default=-1)

    def status(self, seq: int) -> tuple[Fate, Any]:
        if seq in self.decided:
            return Fate.DECIDED, self.decided[seq]
        return Fate.PENDING, None

    async def wait_decided(self, seq: int) -> Any:
        while seq not in self.decided:
            await self.changed.wait()
        return self.decided[seq]

    def start(self, seq: int, value: Any) -> None:
        self.classic_starts.append(seq)

    def done(self, seq: int) -> None:
        pass


class Register:
    """A machine of one register: put sets it, get reads it."""

    def __init__(self) -> None:
        self.value: Any = None
        self.puts = 0

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        if op["op"] == "put":
            self.value = op["value"]
            self.puts += 1
        return {"err": "OK", "value": self.value}

    def snapshot(self) -> dict[str, Any]:
        return {"value": self.value}


class NullStorage:
    snapshot_failed = False

    def should_compact(self, *, idle: bool) -> bool:
        return False


def make(peer: LeaderPeer) -> tuple[ReplicatedStateMachine, Register]:
    machine = Register()
    rsm = ReplicatedStateMachine(
        peer=peer,  # type: ignore[arg-type]
        machine=machine,
        applied=-1,
        storage=NullStorage(),  # type: ignore[arg-type]
    )
    return rsm, machine


async def test_a_follower_refuses_at_once_and_names_the_leader() -> None:
    peer = LeaderPeer(leading=False)
    rsm, _ = make(peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rsm.run)
        with pytest.raises(NotLeaderError) as info:
            await rsm.submit({"op": "put", "value": 1})
        assert info.value.hint == 2
        with pytest.raises(NotLeaderError):
            await rsm.read({"op": "get"})
        assert peer.proposed == []
        nursery.cancel_scope.cancel()


async def test_a_read_waits_for_its_index_and_writes_nothing() -> None:
    peer = LeaderPeer(leading=True)
    rsm, machine = make(peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rsm.run)
        put = await _submit_in_background(nursery, rsm, {"op": "put", "value": "a"})
        await trio.testing.wait_all_tasks_blocked()
        peer.read_index = 0  # the put's instance: a read must see it
        read: list[dict[str, Any]] = []

        async def reader() -> None:
            read.append(await rsm.read({"op": "get"}))

        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert read == []  # instance 0 is not applied yet
        peer.decide(0, peer.proposed[0])
        await trio.testing.wait_all_tasks_blocked()
        assert read == [{"err": "OK", "value": "a"}]
        assert put == [{"err": "OK", "value": "a"}]
        assert len(peer.proposed) == 1 and machine.puts == 1  # the read proposed nothing
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("rule_kept", [True, False])
async def test_a_step_down_answers_not_leader_only_for_ops_never_applied(
    rule_kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not rule_kept:

        async def settle_at_once(self: Any, term: int, upto: int) -> None:
            lost = [n for n, b in self._rsm.batches.items() if b.term <= term]
            self._rsm.fail_batches(lost, NotLeaderError(None))

        monkeypatch.setattr(_leader_path.LeaderPath, "_settle", settle_at_once)
    peer = LeaderPeer(leading=True)
    rsm, machine = make(peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rsm.run)
        first = await _submit_in_background(nursery, rsm, {"op": "put", "value": "x"})
        await trio.testing.wait_all_tasks_blocked()
        second = await _submit_in_background(nursery, rsm, {"op": "put", "value": "y"})
        await trio.testing.wait_all_tasks_blocked()
        assert len(peer.proposed) == 2
        peer.step_down()
        await trio.testing.wait_all_tasks_blocked()
        # Instance 0 gets our first entry; instance 1 our second (a new leader's takeover
        # re-proposed what it found accepted there). Both ops are applied.
        peer.decide(0, peer.proposed[0])
        peer.decide(1, peer.proposed[1])
        await trio.testing.wait_all_tasks_blocked()
        assert machine.puts == 2
        answers = first + second
        refused = [a for a in answers if isinstance(a, NotLeaderError)]
        if rule_kept:
            assert answers == [{"err": "OK", "value": "x"}, {"err": "OK", "value": "y"}]
        else:
            assert refused, "the broken rule refused nothing: the test did not bite"
        nursery.cancel_scope.cancel()


async def test_a_step_down_refuses_what_a_new_leader_replaced() -> None:
    peer = LeaderPeer(leading=True)
    rsm, machine = make(peer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rsm.run)
        answer = await _submit_in_background(nursery, rsm, {"op": "put", "value": "x"})
        await trio.testing.wait_all_tasks_blocked()
        peer.step_down()
        await trio.testing.wait_all_tasks_blocked()
        assert answer == []  # instance 0 is not decided: the op may still be applied
        peer.decide(0, NOOP)  # the new leader found nothing there
        await trio.testing.wait_all_tasks_blocked()
        assert len(answer) == 1 and isinstance(answer[0], NotLeaderError)
        assert machine.puts == 0
        assert peer.classic_starts == []  # no classic round that would depose a leader
        nursery.cancel_scope.cancel()


async def _submit_in_background(
    nursery: trio.Nursery, rsm: ReplicatedStateMachine, op: dict[str, Any]
) -> list[Any]:
    answers: list[Any] = []

    async def run() -> None:
        try:
            answers.append(await rsm.submit(op))
        except NotLeaderError as exc:
            answers.append(exc)

    nursery.start_soon(run)
    return answers
