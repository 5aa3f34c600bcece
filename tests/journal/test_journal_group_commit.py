"""GroupCommit: tasks are released only once their records are durable, and share syncs."""

from __future__ import annotations

import threading
from pathlib import Path

import trio
import trio.testing

from journal import GroupCommit, Journal, SimulatedFileSystem

SYNCS_MAX = 4


class GatedJournal:
    """A journal stand-in whose i-th sync() waits in its worker thread for gates[i]."""

    def __init__(self) -> None:
        self.last_lsn = 0
        self.synced_lsn = 0
        self.started = [trio.Event() for _ in range(SYNCS_MAX)]
        self.gates = [threading.Event() for _ in range(SYNCS_MAX)]
        self.sync_calls = 0

    def append(self) -> int:
        self.last_lsn += 1
        return self.last_lsn

    def sync(self) -> None:
        index = self.sync_calls
        self.sync_calls += 1
        target = self.last_lsn
        trio.from_thread.run_sync(self.started[index].set)
        self.gates[index].wait()
        self.synced_lsn = target

    def snapshot(self, state: bytes, upto_lsn: int) -> None:
        raise AssertionError("not used")


async def test_callers_wait_for_the_sync_that_covers_them() -> None:
    journal = GatedJournal()
    group = GroupCommit(journal)
    released: list[tuple[int, int]] = []  # (own lsn, synced_lsn when released)

    async def writer() -> None:
        lsn = journal.append()
        await group.sync()
        released.append((lsn, journal.synced_lsn))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await journal.started[0].wait()  # the first sync covers LSN 1 only
        for _ in range(10):
            nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert released == []
        assert journal.last_lsn == 11
        journal.gates[0].set()
        await journal.started[1].wait()
        await trio.testing.wait_all_tasks_blocked()
        assert released == [(1, 1)]  # the others appended during sync 1: they need sync 2
        journal.gates[1].set()
    assert sorted(lsn for lsn, _ in released) == list(range(1, 12))
    assert all(synced >= lsn for lsn, synced in released)
    assert journal.sync_calls == group.sync_count == 2


async def test_caller_already_durable_returns_without_a_sync() -> None:
    journal = GatedJournal()
    group = GroupCommit(journal)
    await group.sync()
    assert journal.sync_calls == 0


async def test_many_writers_share_fdatasyncs_and_survive_a_crash() -> None:
    fs = SimulatedFileSystem(7)
    writers = 64
    with Journal.open("/j", fs=fs) as journal:
        group = GroupCommit(journal)
        syncs_before = fs.file_sync_count

        async def writer(index: int) -> None:
            lsn = journal.append(b"w%d" % index)
            await group.sync()
            assert journal.synced_lsn >= lsn

        async with trio.open_nursery() as nursery:
            for index in range(writers):
                nursery.start_soon(writer, index)
        assert fs.file_sync_count - syncs_before < writers // 4
        await group.snapshot(b"state", journal.last_lsn)
        assert journal.snapshot_lsn == writers
    fs.crash()
    with Journal.open("/j", fs=fs) as journal:
        assert journal.loaded_snapshot == (writers, b"state")
        assert journal.last_lsn == writers


async def test_appends_continue_while_a_real_sync_runs(tmp_path: Path) -> None:
    """The Trio thread appends while the worker fdatasyncs; every record is kept in order."""
    path = str(tmp_path) + "/j"
    with Journal.open(path, segment_bytes_max=4096) as journal:
        group = GroupCommit(journal)

        async def appender(base: int) -> None:
            for i in range(200):
                journal.append(b"%d" % (base + i))
                if i % 10 == 0:
                    await group.sync()

        async with trio.open_nursery() as nursery:
            for base in range(0, 1000, 200):
                nursery.start_soon(appender, base)
        await group.sync()
        assert journal.synced_lsn == 1000
    with Journal.open(path) as journal:
        assert sorted(int(payload) for _, payload in journal) == list(range(1000))


class RecordingJournal(GatedJournal):
    """GatedJournal whose snapshot() notes when it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def sync(self) -> None:
        self.events.append("sync-start")
        super().sync()
        self.events.append("sync-end")

    def snapshot(self, state: bytes, upto_lsn: int) -> None:
        self.events.append("snapshot")
        self.synced_lsn = self.last_lsn


async def test_snapshot_waits_for_the_running_sync() -> None:
    journal = RecordingJournal()
    group = GroupCommit(journal)
    journal.append()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(group.sync)
        await journal.started[0].wait()
        nursery.start_soon(group.snapshot, b"state", 1)
        await trio.testing.wait_all_tasks_blocked()
        assert journal.events == ["sync-start"]
        journal.gates[0].set()
    assert journal.events == ["sync-start", "sync-end", "snapshot"]


async def test_a_cancelled_waiter_leaves_the_others_served() -> None:
    journal = GatedJournal()
    group = GroupCommit(journal)
    released: list[int] = []

    async def writer() -> None:
        lsn = journal.append()
        await group.sync()
        released.append(lsn)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await journal.started[0].wait()
        with trio.CancelScope() as scope:
            scope.cancel()
            journal.append()
            await group.sync()  # cancelled while waiting: raises nothing, returns early
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        journal.gates[0].set()
        await journal.started[1].wait()
        journal.gates[1].set()
    assert sorted(released) == [1, 3]
    assert journal.synced_lsn == 3


class FailingJournal:
    last_lsn = 1
    synced_lsn = 0

    def sync(self) -> None:
        raise OSError(5, "Input/output error")

    def snapshot(self, state: bytes, upto_lsn: int) -> None:
        raise AssertionError("not used")


async def test_sync_errors_reach_every_caller() -> None:
    group = GroupCommit(FailingJournal())
    errors: list[BaseException] = []

    async def caller() -> None:
        try:
            await group.sync()
        except OSError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(caller)
    assert len(errors) == 5
