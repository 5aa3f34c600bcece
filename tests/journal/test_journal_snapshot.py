"""Snapshots: what they delete, what replay loads, damaged snapshots, and the compaction policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from journal_helpers import read_back, write_journal

from journal import COMPACT_FLOOR_BYTES, CorruptJournalError, Journal, SimulatedFileSystem, scan
from journal._format import encode_record


def _flip_byte(path: Path, index: int) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_snapshot_deletes_what_it_covers_and_lsns_continue(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"a", b"b", b"c"])
    with Journal.open(path) as journal:
        journal.snapshot(b"state-3", 3)
        assert journal.bytes_since_snapshot == 0
        assert journal.snapshot_bytes == os.path.getsize(path / "snap-0000000000000003.cbor")
        assert journal.append(b"d") == 4
        journal.sync()
    assert sorted(os.listdir(path)) == ["0000000000000004.log", "snap-0000000000000003.cbor"]
    with Journal.open(path) as journal:
        assert journal.loaded_snapshot == (3, b"state-3")
        assert list(journal) == [(4, b"d")]
        journal.snapshot(b"state-4", 4)
        journal.snapshot(b"state-4b", 4)  # same LSN again replaces it
    assert sorted(os.listdir(path)) == ["0000000000000005.log", "snap-0000000000000004.cbor"]
    with Journal.open(path) as journal:
        assert journal.loaded_snapshot == (4, b"state-4b")
        assert list(journal) == []
        assert journal.last_lsn == 4
        assert journal.append(b"e") == 5


def test_snapshot_below_last_lsn_keeps_later_records(tmp_path: Path) -> None:
    path = tmp_path / "j"
    payloads = [b"a", b"bb", b"ccc", b"dddd"]
    write_journal(path, payloads)
    with Journal.open(path) as journal:
        journal.snapshot(b"s2", 2)
        expected = sum(len(encode_record(lsn, payloads[lsn - 1])) for lsn in (3, 4))
        assert journal.bytes_since_snapshot == expected
        journal.append(b"e")
        journal.sync()
    assert "0000000000000001.log" in os.listdir(path)
    with Journal.open(path) as journal:
        assert journal.loaded_snapshot == (2, b"s2")
        assert list(journal) == [(3, b"ccc"), (4, b"dddd"), (5, b"e")]


def test_snapshot_argument_checks(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j", fs=SimulatedFileSystem()) as journal:
        journal.append(b"a")
        with pytest.raises(ValueError):
            journal.snapshot(b"s", 2)
        journal.snapshot(b"s", 1)
        with pytest.raises(ValueError):
            journal.snapshot(b"s", 0)


def _two_snapshots_one_damaged(path: Path) -> None:
    """Snapshots at 3 and 5 over one segment holding 1..6 (as after a crash before deletion)."""
    write_journal(path, [b"1", b"2", b"3", b"4", b"5", b"6"])
    with Journal.open(path) as journal:
        journal.snapshot(b"s3", 3)
        kept = (path / "snap-0000000000000003.cbor").read_bytes()
        journal.snapshot(b"s5", 5)
    (path / "snap-0000000000000003.cbor").write_bytes(kept)
    _flip_byte(path / "snap-0000000000000005.cbor", -3)


def test_damaged_newest_snapshot_falls_back_when_segments_remain(tmp_path: Path) -> None:
    path = tmp_path / "j"
    _two_snapshots_one_damaged(path)
    report = scan(path)
    assert report.damaged_snapshots == ("snap-0000000000000005.cbor",)
    assert report.snapshot_lsn == 3
    with Journal.open(path) as journal:
        assert journal.loaded_snapshot == (3, b"s3")
        assert list(journal) == [(4, b"4"), (5, b"5"), (6, b"6")]
        assert journal.open_report.damaged_snapshots == ("snap-0000000000000005.cbor",)
    assert "snap-0000000000000005.cbor.broken" in os.listdir(path)
    assert "snap-0000000000000005.cbor" not in os.listdir(path)


def test_damaged_only_snapshot_falls_back_to_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"1", b"2", b"3"])
    with Journal.open(path) as journal:
        journal.snapshot(b"s2", 2)  # segment 1 still holds lsn 3: kept
    _flip_byte(path / "snap-0000000000000002.cbor", 5)
    with Journal.open(path) as journal:
        assert journal.loaded_snapshot is None
        assert list(journal) == [(1, b"1"), (2, b"2"), (3, b"3")]


def test_damaged_snapshot_without_its_segments_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"1", b"2"])
    with Journal.open(path) as journal:
        journal.snapshot(b"s2", 2)
        journal.append(b"3")
        journal.sync()
    _flip_byte(path / "snap-0000000000000002.cbor", -1)
    before = {name: (path / name).read_bytes() for name in os.listdir(path)}
    with pytest.raises(CorruptJournalError) as info:
        Journal.open(path)
    assert (info.value.segment, info.value.lsn) == ("snap-0000000000000002.cbor", 2)
    assert {name: (path / name).read_bytes() for name in os.listdir(path)} == before


def test_truncated_snapshot_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"1", b"2"])
    with Journal.open(path) as journal:
        journal.snapshot(b"x" * 100, 2)
    snap = path / "snap-0000000000000002.cbor"
    snap.write_bytes(snap.read_bytes()[:-10])
    with pytest.raises(CorruptJournalError):
        Journal.open(path)


def test_should_compact_policy() -> None:
    fs = SimulatedFileSystem()
    with Journal.open("/j", fs=fs) as journal:
        assert not journal.should_compact(idle=True)  # nothing to compact
        journal.append(b"x")
        assert not journal.should_compact(idle=False)  # under the floor
        assert journal.should_compact(idle=True)  # idle with garbage
        while journal.bytes_since_snapshot <= COMPACT_FLOOR_BYTES:
            journal.append(bytes(1000))
        assert journal.should_compact(idle=False)
        big_state = bytes(4 * COMPACT_FLOOR_BYTES)
        journal.snapshot(big_state, journal.last_lsn)
        assert not journal.should_compact(idle=True)
        while journal.bytes_since_snapshot <= 2 * COMPACT_FLOOR_BYTES:
            journal.append(bytes(1000))
        assert not journal.should_compact(idle=False)  # above the floor, below the snapshot
        while journal.bytes_since_snapshot <= journal.snapshot_bytes:
            journal.append(bytes(1000))
        assert journal.should_compact(idle=False)


def test_reopen_after_snapshot_reads_back_everything(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"a"])
    with Journal.open(path) as journal:
        journal.snapshot(b"s", 1)
        journal.append(b"b")
    assert read_back(path) == [(2, b"b")]
