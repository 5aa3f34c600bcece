"""Ops into the log through the stable leader (DESIGN.md section 4, "The fast path").

Rules kept here:
- Only the leader places ops in the log; a replica that is not the leader refuses them at
  once with `NotLeaderError` and the leader it believes in (no duelling proposers).
- Up to `LEADER_BATCHES_MAX` batches are in the leader's window at a time; ops arriving
  meanwhile ride together in the next batch.
- A batch is answered when applied. When this peer stops leading, a batch it proposed is
  answered `NotLeaderError` only once every instance it could have been placed in
  (`led_upto`) is applied here without it: a value is sent in exactly one instance, so it
  is then never applied, and the caller may safely try the new leader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._rsm import ReplicatedStateMachine

LEADER_BATCHES_MAX = 4
"""Batches the leader has proposed and not applied yet; the rest of the ops wait and batch.
Measured with 64 and 256 client tasks: 2, 4 and 8 give the same rate within noise (the
leader is bound by its per-op CPU, not by agreements in flight)."""


class NotLeaderError(Exception):
    """This replica is not its group's leader; `hint` is the replica index it believes in."""

    def __init__(self, hint: int | None) -> None:
        super().__init__(
            "not the leader" + ("" if hint is None else f"; the leader is replica {hint}")
        )
        self.hint = hint


class LeaderPath:
    """The proposing side of a replicated state machine whose peer runs in leader mode."""

    def __init__(self, rsm: ReplicatedStateMachine) -> None:
        self._rsm = rsm
        self._term = 0  # how many times this peer became leader

    def refusal(self) -> NotLeaderError | None:
        """The error for an op submitted now, or None if this peer leads."""
        peer = self._rsm.peer
        return None if peer.leading.value else NotLeaderError(peer.leader_hint())

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_leadership, nursery)
            await self._propose_loop()

    async def _propose_loop(self) -> None:
        rsm = self._rsm
        while True:
            await rsm.wait_queued()
            while len(rsm.batches) >= LEADER_BATCHES_MAX:
                await rsm.wait_batches_changed()
            refusal = self.refusal()
            if refusal is not None:
                rsm.fail_queued(refusal)
                continue
            batch = rsm.take_batch(term=self._term)
            if not rsm.peer.propose(rsm.entry_of(batch)):
                failure = self.refusal() or rsm.busy_error("the leader's queue is full")
                rsm.fail_batches([batch.number], failure)

    async def _watch_leadership(self, nursery: trio.Nursery) -> None:
        peer = self._rsm.peer
        while True:
            await peer.leading.wait_value(True)
            self._term += 1
            await peer.leading.wait_value(False)
            self._rsm.fail_queued(NotLeaderError(peer.leader_hint()))
            nursery.start_soon(self._settle, self._term, peer.led_upto)

    async def _settle(self, term: int, upto: int) -> None:
        """Answer the batches of `term` that did not make it, once that is certain."""
        rsm = self._rsm
        await rsm.wait_applied(upto)
        lost = [number for number, batch in rsm.batches.items() if batch.term <= term]
        rsm.fail_batches(lost, NotLeaderError(rsm.peer.leader_hint()))
