"""Ops waiting for a log entry, and the batches of them this replica has proposed.

Rules kept here:
- Ops that arrive while agreements are in flight ride together in the next batch (one log
  entry), up to `BATCH_OPS_MAX` ops and about `BATCH_BYTES_MAX` bytes.
- Every op gets exactly one answer: the result of applying it, or an error that says it
  was not applied (`fail_queued`, `fail_batches`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cbor2
import trio

from ._entry import BATCH_OPS_MAX

BATCH_BYTES_MAX = 8 * 1024 * 1024
"""Approximate bytes in one log entry: one entry travels in one frame (64 MiB cap) several
times (accept, decide) and sits in the journal; a single larger op still goes alone."""

QUEUED_OPS_MAX = 4096
"""Ops waiting for a log entry; beyond this callers are told the server is busy."""


class ServerBusyError(Exception):
    """Raised by `submit` when too many ops are already waiting for the log."""


def _op_bytes(op: dict[str, Any]) -> int:
    """A cheap estimate of an op's encoded size (strings by length, the rest encoded)."""
    total = 0
    for value in op.values():
        if isinstance(value, str | bytes):
            total += len(value)
        elif isinstance(value, int | float | bool) or value is None:
            total += 9
        else:
            total += len(cbor2.dumps(value))
    return total


@dataclass
class Slot:
    """Where one submitted op's answer lands."""

    done: trio.Event = field(default_factory=trio.Event)
    reply: dict[str, Any] | None = None
    error: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.error = error
        self.done.set()


@dataclass
class Batch:
    number: int
    ops: list[dict[str, Any]]
    slots: list[Slot]
    term: int = 0  # with a stable leader: the leadership it was proposed in


class Batches:
    """The op queue and the proposed, unanswered batches."""

    def __init__(self) -> None:
        self._queue: deque[tuple[dict[str, Any], Slot]] = deque()
        self._queue_changed = trio.Event()
        self.proposed: dict[int, Batch] = {}
        self._count = 0

    def enqueue(self, op: dict[str, Any]) -> Slot:
        """Queue `op`; its answer lands in the returned slot.

        Raises:
            ServerBusyError: `QUEUED_OPS_MAX` ops wait already.
        """
        if len(self._queue) >= QUEUED_OPS_MAX:
            raise ServerBusyError(f"{len(self._queue)} ops already queued")
        slot = Slot()
        self._queue.append((op, slot))
        self._queue_changed.set()
        return slot

    async def wait_queued(self) -> None:
        """Return once an op waits for a log entry."""
        while not self._queue:
            self._queue_changed = trio.Event()
            await self._queue_changed.wait()

    def take(self, *, term: int = 0) -> Batch:
        """The next batch from the queue (not empty), registered as proposed."""
        ops: list[dict[str, Any]] = []
        slots: list[Slot] = []
        batch_bytes = 0
        while self._queue and len(ops) < BATCH_OPS_MAX:
            size = _op_bytes(self._queue[0][0])
            if ops and batch_bytes + size > BATCH_BYTES_MAX:
                break
            op, slot = self._queue.popleft()
            ops.append(op)
            slots.append(slot)
            batch_bytes += size
        self._count += 1
        batch = Batch(self._count, ops, slots, term)
        self.proposed[batch.number] = batch
        return batch

    def fail_queued(self, error: Exception) -> None:
        """Answer every op still waiting for a log entry with `error` (none was proposed)."""
        while self._queue:
            self._queue.popleft()[1].fail(error)

    def fail(self, numbers: list[int], error: Exception) -> None:
        """Answer these proposed batches with `error`: they were certainly not applied."""
        for number in numbers:
            batch = self.proposed.pop(number, None)
            if batch is not None:
                for slot in batch.slots:
                    slot.fail(error)
