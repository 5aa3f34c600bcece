"""A replicated state machine: client ops -> Paxos log -> apply in order -> replies.

Rules kept here:
- Every op is applied only through the log, in instance order, on every replica alike;
  a caller's reply is the result of applying its op, never a guess.
- Ops that arrive while an agreement is in flight ride together in the next log entry
  (a batch), so throughput grows with concurrency rather than with agreements.
- A replica fills a hole in the log (an instance someone started but that never reached it)
  by proposing a no-op there, which learns the decided value if there is one. With a
  stable leader (`_leader_path.py`) the leader teaches followers what they missed, and a
  replica proposes no-ops only after `HOLE_WAIT_LEADER_S`: a classic round would depose
  the leader.
- A read (`read`) with a stable leader is not a log entry: the leader confirms it still
  leads (ReadIndex), waits until it has applied the read's index and answers from its state.
- `done()` is called for an instance only after it is applied; the instance's decided
  record is in the journal, so a restart re-applies it from there.
- A snapshot captures the Paxos state and the applied state at the same moment.
- Nothing decided can stop the apply loop: a value that is not a log entry applies as a
  no-op, a malformed op gets an error reply, and an exception raised by the machine's
  `apply` for one op becomes that op's error reply. Each is logged (rate-limited); every
  replica, and every replay after a restart, treats the same value the same way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Protocol

import trio

from diskv_trio import _entropy
from diskv_trio._ratelog import RateLimitedLog, describe
from diskv_trio.paxos import Fate, PaxosForgotten, PaxosNotLeader, PaxosPeer
from journal import JournalNoSpaceError

from ._alarm import NOSPACE_RETRY_S
from ._batches import Batch, Batches, ServerBusyError
from ._entry import (
    BATCH_OPS_MAX,
    EMPTY_ENTRY,
    NOOP,
    BadEntryError,
    LogEntry,
    bad_op_reply,
    parse_entry,
)
from ._leader_path import LeaderPath, NotLeaderError
from ._storage import ServerStorage

log = logging.getLogger("diskv.rsm")

__all__ = [
    "BATCH_OPS_MAX",
    "NOOP",
    "NotLeaderError",
    "ReplicatedStateMachine",
    "ServerBusyError",
    "StateMachine",
]

HOLE_WAIT_S = 0.15
"""How long an instance may stay undecided below max() before a no-op is proposed there."""

HOLE_WAIT_LEADER_S = 2.0
"""The same with a stable leader, which sends decides to a follower stuck for 0.1 s: a
no-op here is the last resort (it deposes the leader), for a group without one."""

CATCH_UP_WINDOW = 64
"""Holes filled at once when catching up: bounds the proposals one replica has in flight."""

COMPACTION_CHECK_S = 0.25
"""How often the compaction policy is consulted."""

IDLE_AFTER_S = 0.5
"""No op applied for this long counts as idle: compaction then removes all garbage."""


class StateMachine(Protocol):
    """The deterministic application state that the log drives."""

    def apply(self, op: dict[str, Any]) -> dict[str, Any]: ...

    def snapshot(self) -> dict[str, Any]: ...


class ReplicatedStateMachine:
    """Drives `machine` from the Paxos log of `peer`, journalling through `storage`."""

    def __init__(
        self,
        *,
        peer: PaxosPeer,
        machine: StateMachine,
        applied: int,
        storage: ServerStorage,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        self.peer = peer
        self.machine = machine
        self.applied = applied
        self._storage = storage
        self._on_applied = on_applied
        self._proposer_id = _entropy.token_hex(8)
        self._batches = Batches()
        self.batches = self._batches.proposed
        """Batches this replica proposed that are not applied or answered yet, by number."""
        self._leader_path = LeaderPath(self) if peer.leader_mode else None
        self._applied_changed = trio.Event()
        self._last_apply_time = -math.inf
        self._min_at_last_snapshot = peer.min()
        self.ops_applied = 0
        self.bad_values_applied = 0
        """Decided values applied as no-ops, malformed ops and failed applies (not in snapshots)."""
        self._errors = RateLimitedLog(log)
        self.behind = trio.Event()
        """Set when the next instance to apply was forgotten by everyone: state transfer needed."""

    # ---- public API -------------------------------------------------------------------

    async def submit(self, op: dict[str, Any]) -> dict[str, Any]:
        """Place `op` in the log and return the result of applying it.

        Cancelling the caller abandons the wait, not the op: it may still be applied.

        Raises:
            ServerBusyError: too many ops are queued already.
            NotLeaderError: the group has a stable leader and it is not this replica; or
                this replica stopped leading and the op was certainly not applied.
        """
        if self._leader_path is not None:
            refusal = self._leader_path.refusal()
            if refusal is not None:
                raise refusal
        slot = self._batches.enqueue(op)
        await slot.done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.reply is not None
        return slot.reply

    async def read(self, op: dict[str, Any]) -> dict[str, Any]:
        """The result of `op`, which must not change the machine, as of a linearizable
        moment: ReadIndex with a stable leader, else through the log like `submit`.

        Raises:
            ServerBusyError, NotLeaderError: as `submit`.
        """
        if self._leader_path is None:
            return await self.submit(op)
        try:
            index = await self.peer.read()
        except PaxosNotLeader as exc:
            raise NotLeaderError(exc.hint) from None
        await self.wait_applied(index)
        return self._apply_op(self.applied, 0, op)

    async def wait_applied(self, seq: int) -> None:
        """Return once instance `seq` has been applied here."""
        while self.applied < seq:
            await self._applied_changed.wait()

    def snapshot_state(self) -> dict[str, Any]:
        """Both layers at this instant, for a journal snapshot."""
        return {
            "paxos": self.peer.snapshot_state(),
            "applied": self.applied,
            "machine": self.machine.snapshot(),
        }

    def application_state(self) -> dict[str, Any]:
        """The applied state alone, for a replica recovering from disk loss."""
        return {"applied": self.applied, "machine": self.machine.snapshot()}

    def install(self, machine: StateMachine, applied: int) -> None:
        """Replace the applied state with a more advanced one fetched from a peer."""
        assert applied >= self.applied
        self.machine = machine
        self.applied = applied
        self.peer.done(applied)
        self.peer.truncate(applied)
        self.behind = trio.Event()
        self._signal_applied()

    async def compact(self) -> None:
        """Write a snapshot of both layers now."""
        await self._storage.snapshot(self.snapshot_state())
        self._min_at_last_snapshot = self.peer.min()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Propose, apply and compact until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._apply_loop)
            if self._leader_path is not None:
                nursery.start_soon(self._leader_path.run)
            else:
                nursery.start_soon(self._propose_loop)
            nursery.start_soon(self._compaction_loop)
            task_status.started()

    # ---- proposing --------------------------------------------------------------------

    async def wait_queued(self) -> None:
        """Return once an op waits for a log entry."""
        await self._batches.wait_queued()

    def take_batch(self, *, term: int = 0) -> Batch:
        return self._batches.take(term=term)

    def entry_of(self, batch: Batch) -> dict[str, Any]:
        return LogEntry(self._proposer_id, batch.number, tuple(batch.ops)).to_value()

    def fail_queued(self, error: Exception) -> None:
        self._batches.fail_queued(error)

    def fail_batches(self, numbers: list[int], error: Exception) -> None:
        """Answer these proposed batches with `error`: the caller knows they were not applied."""
        self._batches.fail(numbers, error)
        self._signal_applied()

    async def wait_batches_changed(self) -> None:
        """Return after the next apply or `fail_batches`."""
        await self._applied_changed.wait()

    @staticmethod
    def busy_error(reason: str) -> ServerBusyError:
        return ServerBusyError(reason)

    async def _propose_loop(self) -> None:
        while True:
            await self.wait_queued()
            await self._propose_until_decided(self.take_batch())

    async def _propose_until_decided(self, batch: Batch) -> None:
        entry = self.entry_of(batch)
        seq = self.applied + 1
        while True:
            seq = max(seq, self.applied + 1, self.peer.max() + 1)
            self.peer.start(seq, entry)
            decided = await self._wait_decided(seq)
            if decided == entry:
                return  # the apply loop answers the slots
            seq += 1

    async def _wait_decided(self, seq: int) -> Any:
        """The value decided for `seq`, or None if it was forgotten before we saw it."""
        while True:
            fate, value = self.peer.status(seq)
            if fate == Fate.DECIDED:
                return value
            if fate == Fate.FORGOTTEN:
                return None
            try:
                return await self.peer.wait_decided(seq)
            except PaxosForgotten:
                return None

    # ---- applying ---------------------------------------------------------------------

    async def _apply_loop(self) -> None:
        while True:
            seq = self.applied + 1
            fate, value = self.peer.status(seq)
            if fate == Fate.DECIDED:
                self._apply(seq, value)
                continue
            if fate == Fate.FORGOTTEN:
                # Everyone moved past an instance we never applied: only a transfer of the
                # applied state can help; the node installs one and wakes us.
                self.behind.set()
                await self._applied_changed_or_timeout(HOLE_WAIT_S)
                continue
            hole_wait = HOLE_WAIT_S if self._leader_path is None else HOLE_WAIT_LEADER_S
            with trio.move_on_after(hole_wait):
                try:
                    value = await self.peer.wait_decided(seq)
                except PaxosForgotten:
                    continue  # the next pass sees FORGOTTEN and asks for a state transfer
                self._apply(seq, value)
                continue
            # Instances up to max() that are still pending here were started by someone:
            # propose no-ops in all of them at once, which learns their decided values
            # (a replica back from a crash may have hundreds to catch up on).
            last = min(self.peer.max(), seq + CATCH_UP_WINDOW - 1)
            for hole in range(seq, last + 1):
                if self.peer.status(hole)[0] == Fate.PENDING:
                    self.peer.start(hole, NOOP)

    async def _applied_changed_or_timeout(self, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            await self._applied_changed.wait()

    def _apply(self, seq: int, value: Any) -> None:
        assert seq == self.applied + 1
        try:
            entry = parse_entry(value)
        except BadEntryError as exc:
            self.bad_values_applied += 1
            self._errors.error(
                "instance %d: decided value applied as a no-op (%s): %s", seq, exc, describe(value)
            )
            entry = EMPTY_ENTRY
        mine = entry.proposer == self._proposer_id and entry.batch in self.batches
        batch = self.batches.pop(entry.batch) if mine else None
        for index, op in enumerate(entry.ops):
            reply = self._apply_op(seq, index, op)
            self.ops_applied += 1
            if batch is not None and index < len(batch.slots):
                slot = batch.slots[index]
                slot.reply = reply
                slot.done.set()
        self.applied = seq
        self._last_apply_time = trio.current_time()
        self.peer.done(seq)
        if self._on_applied is not None:
            self._on_applied(seq)
        self._signal_applied()

    def _apply_op(self, seq: int, index: int, op: object) -> dict[str, Any]:
        """Apply one decided op; a malformed op or a failing apply gets an error reply.

        A machine is deterministic, so an exception here is raised for the same op on every
        replica; the op's effects before it are the same everywhere too.
        """
        if not isinstance(op, dict):
            self.bad_values_applied += 1
            self._errors.error("instance %d op %d is not a map: %s", seq, index, describe(op))
            return bad_op_reply(f"op must be a map, got {type(op).__name__}")
        try:
            reply = self.machine.apply(op)
        except Exception as exc:
            self.bad_values_applied += 1
            self._errors.error(
                "instance %d op %d: apply raised %s: %s",
                seq,
                index,
                type(exc).__name__,
                describe(op),
            )
            return bad_op_reply(f"op could not be applied: {type(exc).__name__}")
        if not isinstance(reply, dict):
            self.bad_values_applied += 1
            return bad_op_reply(f"apply returned {type(reply).__name__}")
        return reply

    def _signal_applied(self) -> None:
        self._applied_changed.set()
        self._applied_changed = trio.Event()

    # ---- compaction -------------------------------------------------------------------

    async def _compaction_loop(self) -> None:
        while True:
            await trio.sleep(COMPACTION_CHECK_S)
            idle = trio.current_time() - self._last_apply_time >= IDLE_AFTER_S
            forgot = self.peer.min() != self._min_at_last_snapshot
            retry = self._storage.snapshot_failed  # only a snapshot clears its alarm
            if self._storage.should_compact(idle=idle) or (idle and forgot) or retry:
                try:
                    await self.compact()
                except JournalNoSpaceError:
                    await trio.sleep(NOSPACE_RETRY_S)  # the alarm is raised; try again later
