"""Torn tails and bit flips: what replay keeps, what it refuses, and what it changes on disk.

Truncation is tried at every byte of the last record on the real file system; bit flips at
every bit of a small journal on the simulated one (same code path, much faster).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from journal_helpers import only_segment, read_back, write_journal

from journal import CorruptJournalError, Journal, SimulatedFileSystem, scan
from journal._format import encode_record


def _record_offsets(payloads: list[bytes]) -> list[int]:
    offsets, offset = [], 0
    for lsn, payload in enumerate(payloads, start=1):
        offsets.append(offset)
        offset += len(encode_record(lsn, payload))
    return offsets + [offset]


def test_truncation_at_every_byte_of_the_last_record(tmp_path: Path, payloads: list[bytes]) -> None:
    original = tmp_path / "original"
    write_journal(original, payloads)
    offsets = _record_offsets(payloads)
    last_start, end = offsets[-2], offsets[-1]
    for cut in range(last_start, end):
        path = tmp_path / f"cut-{cut}"
        shutil.copytree(original, path)
        segment = only_segment(path)
        os.truncate(segment, cut)
        truncated = Path(segment).read_bytes()
        with Journal.open(path) as journal:
            report = journal.open_report
            assert list(journal) == list(enumerate(payloads[:-1], start=1))
            assert journal.last_lsn == len(payloads) - 1
            if cut == last_start:
                assert report.verdict == "clean"
                continue
            assert report.verdict == "torn-tail"
            assert (report.offset, report.lsn) == (last_start, len(payloads))
            assert report.broken_copy is not None
            assert (path / report.broken_copy).read_bytes() == truncated
            assert os.path.getsize(segment) == last_start
            assert journal.append(b"next") == len(payloads)
        assert scan(path).verdict.kind == "clean"
        assert read_back(path)[-1] == (len(payloads), b"next")


def test_second_torn_tail_gets_a_fresh_broken_name(tmp_path: Path, payloads: list[bytes]) -> None:
    path = tmp_path / "j"
    write_journal(path, payloads)
    for round_number in range(2):
        with open(only_segment(path), "ab") as file:
            file.write(b"\x00\x00\x00\x30garbage")
        with Journal.open(path) as journal:
            assert journal.open_report.verdict == "torn-tail"
            expected = "0000000000000001.log.broken" + ("" if round_number == 0 else ".1")
            assert journal.open_report.broken_copy == expected
    assert sorted(os.listdir(path))[:3] == [
        "0000000000000001.log",
        "0000000000000001.log.broken",
        "0000000000000001.log.broken.1",
    ]


def _sim_with_segment(data: bytes) -> SimulatedFileSystem:
    fs = SimulatedFileSystem()
    fs.make_dirs("/j")
    fs.write_file("/j/0000000000000001.log", data)
    return fs


def test_single_bit_flip_anywhere(payloads: list[bytes]) -> None:
    """A flip in the last record is a torn tail; anywhere else it is corruption, never a loss."""
    fs = SimulatedFileSystem()
    write_journal("/j", payloads, fs=fs)
    good = fs.read_file("/j/0000000000000001.log")
    offsets = _record_offsets(payloads)
    last = len(payloads) - 1
    verdicts = {"torn-tail": 0, "corrupt": 0}
    for byte in range(len(good)):
        index = max(i for i in range(len(payloads)) if offsets[i] <= byte)
        for bit in range(8):
            damaged = bytearray(good)
            damaged[byte] ^= 1 << bit
            fs = _sim_with_segment(bytes(damaged))
            if index < last:
                with pytest.raises(CorruptJournalError) as info:
                    Journal.open("/j", fs=fs)
                assert (info.value.segment, info.value.offset, info.value.lsn) == (
                    "0000000000000001.log",
                    offsets[index],
                    index + 1,
                )
                assert fs.read_file("/j/0000000000000001.log") == bytes(damaged)
                assert fs.list_dir("/j") == ["0000000000000001.log"]
                verdicts["corrupt"] += 1
            else:
                with Journal.open("/j", fs=fs) as journal:
                    assert journal.open_report.verdict == "torn-tail"
                    assert list(journal) == list(enumerate(payloads[:-1], start=1))
                verdicts["torn-tail"] += 1
    assert verdicts["corrupt"] == offsets[last] * 8
    assert verdicts["torn-tail"] == (offsets[-1] - offsets[last]) * 8


def test_damage_in_an_older_segment_is_corruption_even_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "j"
    with Journal.open(path, segment_bytes_max=1) as journal:
        for payload in (b"a", b"b", b"c"):
            journal.append(payload)
            journal.sync()  # each sync rolls over: one record per segment
    first = path / "0000000000000001.log"
    data = bytearray(first.read_bytes())
    data[-1] ^= 0x01
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError) as info:
        Journal.open(path)
    assert (info.value.segment, info.value.offset, info.value.lsn) == ("0000000000000001.log", 0, 1)
    assert scan(path).verdict.kind == "corrupt"


def test_a_valid_record_with_the_wrong_lsn_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write_journal(path, [b"a"])
    with open(only_segment(path), "ab") as file:
        file.write(encode_record(5, b"stray"))
    with pytest.raises(CorruptJournalError) as info:
        Journal.open(path)
    assert info.value.lsn == 2
    assert "lsn 5" in info.value.reason


def test_zero_filled_tail_is_torn(tmp_path: Path, payloads: list[bytes]) -> None:
    path = tmp_path / "j"
    write_journal(path, payloads)
    with open(only_segment(path), "ab") as file:
        file.write(bytes(4096))
    with Journal.open(path) as journal:
        assert journal.open_report.verdict == "torn-tail"
        assert journal.last_lsn == len(payloads)
