"""A full disk (ENOSPC) never loses a synced record, never leaves a torn record in front of a
good one, and never makes the journal unusable.

How: a `SimulatedFileSystem` with a byte capacity raises ENOSPC on a write that does not fit,
after writing the part that fits (as a real file system does). Each test fills it, checks what
`append`, `sync` and `snapshot` do, frees space, and crashes and reopens to see what is on disk.
"""

from __future__ import annotations

import errno
import os

import pytest

from journal import Journal, JournalNoSpaceError, SimulatedFileSystem
from journal._sim_fs import _Inode, _SimulatedFileHandle

DIRECTORY = "/j"


class FullDiskFileSystem(SimulatedFileSystem):
    """A simulated disk holding at most `capacity_bytes` of file data (None: unlimited)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.capacity_bytes: int | None = None

    def used_bytes(self) -> int:
        inodes = {id(i): i for entries in self._dirs.values() for i in entries.values()}
        return sum(len(inode.data) for inode in inodes.values())

    def fill(self) -> None:
        self.capacity_bytes = self.used_bytes()

    def free(self) -> None:
        self.capacity_bytes = None

    def open_append(self, path: str, *, create: bool) -> _SimulatedFileHandle:
        handle = super().open_append(path, create=create)
        return _FullDiskHandle(self, handle._inode)


class _FullDiskHandle(_SimulatedFileHandle):
    def __init__(self, fs: FullDiskFileSystem, inode: _Inode) -> None:
        super().__init__(fs, inode)
        self._disk = fs

    def write(self, data: bytes) -> None:
        capacity = self._disk.capacity_bytes
        room = None if capacity is None else max(0, capacity - self._disk.used_bytes())
        if room is not None and len(data) > room:
            super().write(data[:room])  # the part that fits lands, like a short write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write(data)


def replayed(fs: SimulatedFileSystem) -> tuple[str, list[bytes]]:
    fs.crash()
    with Journal.open(DIRECTORY, fs=fs) as journal:
        return journal.open_report.verdict, [payload for _, payload in journal]


def test_full_disk_keeps_unsynced_records_and_writes_them_once_space_returns() -> None:
    fs = FullDiskFileSystem(seed=1)
    journal = Journal.open(DIRECTORY, fs=fs)
    journal.append(b"a" * 50)
    journal.sync()
    fs.fill()
    assert journal.append(b"b" * 50) == 2  # no error: the record waits in memory
    journal.append(b"c" * 50)
    with pytest.raises(JournalNoSpaceError):
        journal.sync()
    assert journal.synced_lsn == 1
    with pytest.raises(JournalNoSpaceError):
        journal.sync()  # still full: still refused, still usable
    fs.free()
    journal.append(b"d" * 50)
    journal.sync()
    assert journal.synced_lsn == 4
    assert replayed(fs) == ("clean", [b"a" * 50, b"b" * 50, b"c" * 50, b"d" * 50])


def test_a_record_cut_short_by_a_full_disk_never_ends_up_before_a_good_one() -> None:
    fs = FullDiskFileSystem(seed=2)
    journal = Journal.open(DIRECTORY, fs=fs)
    journal.append(b"a" * 40)
    journal.sync()
    fs.capacity_bytes = fs.used_bytes() + 20  # half of the next record fits
    journal.append(b"b" * 40)
    fs.capacity_bytes += 200  # space for the next record alone: it must not land after the half
    journal.append(b"c" * 40)
    fs.free()
    journal.sync()
    assert replayed(fs) == ("clean", [b"a" * 40, b"b" * 40, b"c" * 40])


def test_a_kill_while_full_loses_only_unsynced_records_and_leaves_no_torn_tail() -> None:
    fs = FullDiskFileSystem(seed=3)
    journal = Journal.open(DIRECTORY, fs=fs)
    journal.append(b"a" * 40)
    journal.sync()
    fs.capacity_bytes = fs.used_bytes() + 20
    journal.append(b"b" * 40)
    with pytest.raises(JournalNoSpaceError):
        journal.sync()
    fs.free()
    assert replayed(fs) == ("clean", [b"a" * 40])


def test_snapshot_on_a_full_disk_changes_nothing_and_succeeds_later() -> None:
    fs = FullDiskFileSystem(seed=4)
    journal = Journal.open(DIRECTORY, fs=fs)
    for i in range(5):
        journal.append(b"%d" % i * 30)
    journal.sync()
    fs.fill()
    with pytest.raises(JournalNoSpaceError):
        journal.snapshot(b"state" * 40, journal.last_lsn)
    assert not [n for n in fs.list_dir(DIRECTORY) if n.endswith(".tmp")]
    assert journal.snapshot_lsn == 0
    journal.append(b"after")  # still usable
    fs.free()
    journal.sync()
    journal.snapshot(b"state" * 40, journal.last_lsn)
    assert journal.snapshot_lsn == 6
    fs.crash()
    with Journal.open(DIRECTORY, fs=fs) as reopened:
        assert reopened.loaded_snapshot == (6, b"state" * 40)
