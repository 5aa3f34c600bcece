"""Group commit for Trio: many tasks share one fdatasync.

Each caller of `sync()` notes the journal's last LSN when it calls, and returns only once
`synced_lsn` reaches it. At most one journal operation runs at a time, in a worker thread,
started by a caller that finds none running (the leader). Callers arriving meanwhile wait
with their target LSN. When the operation ends, the leader wakes exactly the waiters it
covered, plus one that it did not, who leads the next sync, which covers all the others.
So no caller is woken by a sync that does not cover it (but that one), no caller leads
twice in a row, and nobody is left waiting with no sync to come.
A snapshot takes the same slot (it syncs first, so it covers the waiters too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

RunSync = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs a blocking journal operation and returns when it is done: a worker thread by
default (`trio.to_thread.run_sync`); on a disk in memory it may run inline."""


class SyncableJournal(Protocol):
    @property
    def last_lsn(self) -> int: ...

    @property
    def synced_lsn(self) -> int: ...

    def sync(self) -> None: ...

    def snapshot(self, state: bytes, upto_lsn: int) -> None: ...


class _Waiter:
    """A caller waiting for its turn; compared by identity."""

    __slots__ = ("target_lsn", "event")

    def __init__(self, target_lsn: int) -> None:
        self.target_lsn = target_lsn
        self.event = trio.Event()


class GroupCommit:
    """Trio front of a `Journal`: `await sync()` and `await snapshot()` in worker threads.

    Args:
        journal: the journal.
        run_sync: how a sync or snapshot runs (`RunSync`); a simulated disk passes its own,
            so no thread makes its timing depend on the operating system.

    Attributes:
        sync_count: journal syncs run so far (compare with the number of callers).
    """

    def __init__(self, journal: SyncableJournal, *, run_sync: RunSync | None = None) -> None:
        self._journal = journal
        self._run_sync: RunSync = run_sync if run_sync is not None else trio.to_thread.run_sync
        self._busy = False
        self._waiters: list[_Waiter] = []
        self.sync_count = 0

    async def _lead(self, function: Callable[[], None]) -> None:
        """Run function (in a worker thread by default) as the only journal operation in flight."""
        assert not self._busy
        self._busy = True
        try:
            await self._run_sync(function)
        finally:
            self._busy = False
            self._wake_after_operation()

    def _wake_after_operation(self) -> None:
        synced = self._journal.synced_lsn
        still_waiting: list[_Waiter] = []
        next_leader_woken = False
        for waiter in self._waiters:
            if waiter.target_lsn <= synced:
                waiter.event.set()
            elif not next_leader_woken:
                waiter.event.set()
                next_leader_woken = True
            else:
                still_waiting.append(waiter)
        self._waiters = still_waiting

    async def _wait_for_turn(self, target: int) -> None:
        waiter = _Waiter(target)
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        finally:
            if not waiter.event.is_set():  # cancelled before being woken
                self._waiters.remove(waiter)

    async def sync(self) -> None:
        """Return once every record appended (in this process) before the call is durable.

        Raises whatever `Journal.sync` raises (every caller waiting on a failed sync retries
        it and so gets the journal's error). Not cancellable while leading a sync.
        """
        target = self._journal.last_lsn
        if self._journal.synced_lsn >= target:
            await trio.lowlevel.checkpoint()
            return
        while self._journal.synced_lsn < target:
            if self._busy:
                await self._wait_for_turn(target)
                continue
            # About to lead. The callers released by the last sync run in this same batch and
            # append their next records: let them first, so this sync takes them along
            # instead of leaving them for the one after. Shielded: a leader-to-be that went
            # away would leave the waiters with no sync to come.
            await trio.lowlevel.cancel_shielded_checkpoint()
            if self._busy or self._journal.synced_lsn >= target:
                continue
            self.sync_count += 1
            await self._lead(self._journal.sync)

    async def snapshot(self, state: bytes, upto_lsn: int) -> None:
        """Run `Journal.snapshot` in a worker thread, never beside a sync."""
        while self._busy:
            await self._wait_for_turn(self._journal.last_lsn + 1)  # never covered: it leads
        await self._lead(lambda: self._journal.snapshot(state, upto_lsn))
