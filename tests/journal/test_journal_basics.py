"""Append, sync, reopen, iteration rules, errors and thread safety of `Journal`."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from journal_helpers import read_back, write_journal

from journal import (
    CorruptJournalError,
    Journal,
    JournalClosedError,
    JournalError,
    NotAJournalError,
    SimulatedFileSystem,
    scan,
)


def test_lsns_start_at_one_and_continue_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path) as journal:
        assert journal.last_lsn == 0
        assert [journal.append(b"a"), journal.append(b"b")] == [1, 2]
        journal.sync()
        assert journal.synced_lsn == 2
    with Journal.open(path) as journal:
        assert list(journal) == [(1, b"a"), (2, b"b")]
        assert journal.append(b"c") == 3
    assert read_back(path) == [(1, b"a"), (2, b"b"), (3, b"c")]


def test_unsynced_append_survives_close_without_hold(tmp_path: Path) -> None:
    """append() reaches the file at once (a process kill would not lose it)."""
    path = tmp_path / "j"
    journal = Journal.open(path)
    journal.append(b"x")
    assert scan(path).last_lsn == 1
    journal.close()


def test_hold_unsynced_keeps_records_in_memory_until_sync(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path, hold_unsynced=True) as journal:
        journal.append(b"x")
        assert scan(path).last_lsn == 0
        journal.sync()
        assert scan(path).last_lsn == 1


def test_hold_unsynced_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISKV_JOURNAL_HOLD_UNSYNCED", "1")
    with Journal.open(tmp_path / "j") as journal:
        journal.append(b"x")
        assert scan(tmp_path / "j").last_lsn == 0


def test_iteration_is_refused_after_first_append(tmp_path: Path) -> None:
    write_journal(tmp_path / "j", [b"a"])
    with Journal.open(tmp_path / "j") as journal:
        assert list(journal) == [(1, b"a")]
        journal.append(b"b")
        with pytest.raises(JournalError):
            list(journal)


def test_closed_journal_refuses_calls(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j")
    journal.close()
    journal.close()
    assert journal.closed
    with pytest.raises(JournalClosedError):
        journal.append(b"x")
    with pytest.raises(JournalClosedError):
        journal.sync()


def test_open_on_a_file_is_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    with pytest.raises(NotAJournalError):
        Journal.open(tmp_path / "f")


def test_unknown_files_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.mkdir()
    (path / "IDENTITY").write_bytes(b"gid=1 me=0")
    write_journal(path, [b"a"])
    assert (path / "IDENTITY").read_bytes() == b"gid=1 me=0"
    assert read_back(path) == [(1, b"a")]


def test_leftover_temp_files_are_removed_at_open(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"a"])
    (path / "snap-0000000000000001.tmp").write_bytes(b"half a snapshot")
    with Journal.open(path) as journal:
        assert journal.open_report.removed_temp_files == ("snap-0000000000000001.tmp",)
        assert journal.loaded_snapshot is None
    assert not list(path.glob("*.tmp"))


def test_lsn_gap_between_segments_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"a", b"b"])
    with Journal.open(path, fs=None) as journal:
        journal.snapshot(b"s", 2)  # rolls over to a segment starting at 3
        journal.append(b"c")
        journal.sync()
    # Remove the snapshot: replay from LSN 1 now needs segment 1, which was deleted.
    os.remove(path / "snap-0000000000000002.cbor")
    before = sorted(os.listdir(path))
    with pytest.raises(CorruptJournalError) as info:
        Journal.open(path)
    assert info.value.lsn == 1
    assert sorted(os.listdir(path)) == before


def test_payload_size_is_bounded(tmp_path: Path) -> None:
    import journal as package

    with Journal.open(tmp_path / "j", fs=SimulatedFileSystem()) as journal:
        with pytest.raises(ValueError):
            journal.append(bytes(package.PAYLOAD_BYTES_MAX + 1))


def test_appends_from_one_thread_while_another_syncs(tmp_path: Path) -> None:
    """Concurrent append() and sync() never interleave bytes or lose a record."""
    path = tmp_path / "j"
    journal = Journal.open(path, segment_bytes_max=4096)
    stop = threading.Event()
    errors: list[BaseException] = []

    def syncer() -> None:
        try:
            while not stop.is_set():
                journal.sync()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=syncer)
    thread.start()
    try:
        for i in range(3000):
            journal.append(b"%d" % i)
    finally:
        stop.set()
        thread.join()
    journal.sync()
    assert journal.synced_lsn == 3000
    journal.close()
    assert errors == []
    assert read_back(path) == [(i + 1, b"%d" % i) for i in range(3000)]
    assert len(list(path.glob("*.log"))) > 1


def test_sync_rolls_over_only_past_segment_bytes_max(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path, segment_bytes_max=100) as journal:
        for _ in range(10):
            journal.append(b"0123456789")
        assert len(list(path.glob("*.log"))) == 1
        journal.sync()
        assert sorted(p.name for p in path.glob("*.log")) == [
            "0000000000000001.log",
            "000000000000000b.log",
        ]
    assert scan(path).verdict.kind == "clean"
