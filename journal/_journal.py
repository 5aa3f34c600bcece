"""The journal: append, sync, snapshot and replay over a directory of segments.

Rules it keeps:
- LSNs start at 1, grow by one per record, and continue across restarts and snapshots.
- `append()` writes with unbuffered os.write (a process kill loses nothing it returned for),
  except with hold_unsynced, where records wait in memory until `sync()`.
- `sync()` returns only when every record appended before it was called is durable.
- A segment is rolled over only once it is wholly synced, so damage in any segment but the
  newest is corruption, never a torn write.
- Snapshots: tmp file, sync, rename, directory sync, and only then deletion of what they cover.
- A full disk (ENOSPC, EDQUOT) is not fatal: records not yet synced stay in memory; after a
  failed write or sync the segment's tail is unknown, so the next `sync()` truncates it back
  to the last synced length and writes them again before syncing (the kernel may have
  dropped pages whose fsync failed). Until then `append()` writes nothing, so no torn record
  can ever sit in front of a good one.

Threads: `append()` may run in one thread while `sync()` or `snapshot()` runs in another.
`_state_lock` guards the in-memory state and file appends (held for microseconds);
`_sync_lock` serializes sync, snapshot and close, and is held across fdatasync, which runs
without `_state_lock` so appends go on meanwhile.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from ._errors import (
    CorruptJournalError,
    JournalClosedError,
    JournalError,
    JournalNoSpaceError,
    NotAJournalError,
)
from ._format import (
    BODY_BYTES_MIN,
    HEADER,
    HEADER_BYTES,
    RECORD_BYTES_MAX,
    encode_record,
    encode_snapshot,
    parse_snapshot_name,
    segment_name,
    snapshot_name,
    snapshot_tmp_name,
)
from ._fs import FileSystem, RealFileSystem
from ._scan import BROKEN_SUFFIX, ReplayChunk, analyse

# Segments roll over (at a sync) once this big: large enough that rollover's extra
# fdatasync and directory sync are rare, small enough to read whole at replay.
SEGMENT_BYTES_MAX_DEFAULT = 16 * 1024 * 1024
# Below this much journal since the last snapshot, size alone never asks for a snapshot:
# a tiny state would otherwise be rewritten after every few records.
COMPACT_FLOOR_BYTES = 64 * 1024
PAYLOAD_BYTES_MAX = RECORD_BYTES_MAX - BODY_BYTES_MIN
HOLD_UNSYNCED_ENV = "DISKV_JOURNAL_HOLD_UNSYNCED"
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


@dataclass(frozen=True, slots=True)
class OpenReport:
    """What `Journal.open` found and did.

    verdict is "clean" or "torn-tail"; for a torn tail, segment / offset / lsn say where the
    bad record was (the segment was copied to broken_copy, then truncated at offset).
    """

    verdict: str
    segment: str | None = None
    offset: int | None = None
    lsn: int | None = None
    broken_copy: str | None = None
    damaged_snapshots: tuple[str, ...] = ()  # moved aside as <name>.broken
    removed_temp_files: tuple[str, ...] = ()


def broken_name(fs: FileSystem, directory: str, name: str) -> str:
    """Return a free name for a copy of name set aside: name.broken, name.broken.1, ..."""
    candidate = name + BROKEN_SUFFIX
    counter = 0
    while fs.exists(os.path.join(directory, candidate)):
        counter += 1
        candidate = f"{name}{BROKEN_SUFFIX}.{counter}"
    return candidate


def copy_aside(fs: FileSystem, directory: str, name: str) -> str:
    """Copy a file to a free .broken name, durably (file and directory synced), so the copy
    exists before the original is changed."""
    target = broken_name(fs, directory, name)
    data = fs.read_file(os.path.join(directory, name))
    handle = fs.open_append(os.path.join(directory, target), create=True)
    try:
        handle.write(data)
        handle.sync()
    finally:
        handle.close()
    fs.sync_dir(directory)
    return target


def truncate_file(fs: FileSystem, path: str, size_bytes: int) -> None:
    handle = fs.open_append(path, create=False)
    try:
        handle.truncate(size_bytes)
        handle.sync()
    finally:
        handle.close()


class Journal:
    """A write-ahead journal in one directory. Create with `Journal.open`.

    Attributes:
        open_report: what `open` found and did (`OpenReport`).
        loaded_snapshot: (lsn, state) of the snapshot found at open, or None; it is not
            updated by later `snapshot()` calls.
    """

    def __init__(
        self,
        path: str,
        fs: FileSystem,
        segment_bytes_max: int,
        hold_unsynced: bool,
        *,
        _token: object,
    ) -> None:
        if _token is not _OPEN_TOKEN:
            raise TypeError("use Journal.open()")
        self._state_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fs = fs
        self._path = path
        self._segment_bytes_max = segment_bytes_max
        self._hold = hold_unsynced
        self._pending: list[bytes] = []
        # Every record after synced_lsn, encoded, in order; its total size; and whether the
        # file's tail must be rewritten from it (a write or sync failed for lack of space).
        self._unsynced: list[bytes] = []
        self._unsynced_bytes = 0
        self._rewrite = False
        self._dir_dirty = False
        self._closed = False
        self._failure: BaseException | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        fs: FileSystem | None = None,
        segment_bytes_max: int = SEGMENT_BYTES_MAX_DEFAULT,
        hold_unsynced: bool = False,
    ) -> Journal:
        """Open the journal at path, creating the directory if missing, else replaying it.

        A torn tail is repaired (segment copied aside, then truncated); leftover *.tmp files
        are removed; a damaged newest snapshot is moved aside when an older one plus the
        segments still on disk replace it. `open_report` says what was done.

        Args:
            segment_bytes_max: roll over to a new segment at the first sync past this size.
            hold_unsynced: keep appended records in memory until `sync()` (also turned on by
                the environment variable DISKV_JOURNAL_HOLD_UNSYNCED=1), so killing the
                process loses unsynced records as power loss would. For crash tests.
        Raises:
            CorruptJournalError: damage replay must not skip; nothing was modified.
            NotAJournalError: path exists and is not a directory.
            OSError: the file system failed (e.g. PermissionError).
        """
        if segment_bytes_max < 1:
            raise ValueError("segment_bytes_max must be positive")
        self = cls(
            os.fspath(path),
            fs if fs is not None else RealFileSystem(),
            segment_bytes_max,
            hold_unsynced or os.environ.get(HOLD_UNSYNCED_ENV) == "1",
            _token=_OPEN_TOKEN,
        )
        self._open_directory()
        return self

    def _open_directory(self) -> None:
        fs, path = self._fs, self._path
        if fs.exists(path) and not fs.is_dir(path):
            raise NotAJournalError(f"{path} is not a directory")
        if not fs.exists(path):
            fs.make_dirs(path)
        analysis = analyse(path, fs, collect_records=True)
        report = analysis.report
        verdict = report.verdict
        if verdict.kind == "corrupt":
            assert verdict.segment is not None
            raise CorruptJournalError(
                verdict.segment, verdict.offset or 0, verdict.lsn or 0, verdict.reason
            )
        changed = False
        for name in report.temp_files:
            fs.remove(os.path.join(path, name))
            changed = True
        for name in report.damaged_snapshots:
            fs.rename(os.path.join(path, name), os.path.join(path, broken_name(fs, path, name)))
            changed = True
        broken_copy = None
        if verdict.kind == "torn-tail":
            assert verdict.segment is not None and verdict.offset is not None
            broken_copy = copy_aside(fs, path, verdict.segment)
            truncate_file(fs, os.path.join(path, verdict.segment), verdict.offset)
            changed = True
        self.open_report = OpenReport(
            verdict=verdict.kind,
            segment=verdict.segment,
            offset=verdict.offset,
            lsn=verdict.lsn,
            broken_copy=broken_copy,
            damaged_snapshots=report.damaged_snapshots,
            removed_temp_files=report.temp_files,
        )
        self._snapshot_lsn = report.snapshot_lsn
        self._snapshot_bytes = analysis.snapshot_bytes
        self.loaded_snapshot: tuple[int, bytes] | None = (
            (report.snapshot_lsn, analysis.snapshot_state)
            if analysis.snapshot_state is not None
            else None
        )
        self._replayed: list[ReplayChunk] | None = analysis.records
        self._bytes_since_snapshot = analysis.bytes_since_snapshot
        self._last_lsn = report.last_lsn
        self._segments = [(s.first_lsn, s.name) for s in report.segments]
        newest = report.segments[-1] if report.segments else None
        if newest is not None and newest.first_lsn + newest.record_count == self._last_lsn + 1:
            self._handle = fs.open_append(os.path.join(path, newest.name), create=False)
            self._segment_first = newest.first_lsn
            self._segment_bytes = newest.valid_bytes
            self._handle.sync()  # replayed bytes may sit only in the page cache
        else:
            first = self._last_lsn + 1
            self._handle = fs.open_append(os.path.join(path, segment_name(first)), create=True)
            self._segment_first = first
            self._segment_bytes = 0
            self._segments.append((first, segment_name(first)))
            changed = True
        if changed:
            fs.sync_dir(path)
        self._synced_lsn = self._last_lsn

    # -- properties ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_lsn(self) -> int:
        """LSN of the newest appended record (or of the snapshot; 0 for an empty journal)."""
        return self._last_lsn

    @property
    def synced_lsn(self) -> int:
        """Every record up to this LSN is durable."""
        return self._synced_lsn

    @property
    def snapshot_lsn(self) -> int:
        """LSN covered by the newest snapshot (0 when there is none)."""
        return self._snapshot_lsn

    @property
    def bytes_since_snapshot(self) -> int:
        """Bytes of the records after the newest snapshot's LSN (framing included)."""
        return self._bytes_since_snapshot

    @property
    def snapshot_bytes(self) -> int:
        """Size of the newest snapshot file (0 when there is none)."""
        return self._snapshot_bytes

    def should_compact(self, idle: bool) -> bool:
        """Whether a snapshot is due: the journal since the last one outgrew it
        (with a floor of COMPACT_FLOOR_BYTES), or the caller is idle and any record follows it.

        Snapshotting when the journal reaches the snapshot's size keeps disk use within about
        twice the live state and amortises the snapshot's write over as many journal bytes.
        """
        garbage = self._bytes_since_snapshot
        if garbage > max(self._snapshot_bytes, COMPACT_FLOOR_BYTES):
            return True
        return idle and garbage > 0

    # -- reading ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Yield (lsn, payload) of every record after the loaded snapshot, as replayed at open.

        Only valid between open and the first `append()` or `snapshot()` (the replayed
        records are then released).

        Raises:
            JournalError: called after the first append or snapshot.
        """
        replayed = self._replayed
        if replayed is None:
            raise JournalError(
                "replayed records are only available before the first append or snapshot"
            )
        return itertools.chain.from_iterable(replayed)

    # -- writing ---------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalClosedError(f"journal {self._path} is closed")
        if self._failure is not None:
            raise JournalError(f"journal {self._path} failed earlier: {self._failure!r}")

    def append(self, payload: bytes) -> int:
        """Append one record and return its LSN. Durable only after a later `sync()`.

        Raises:
            JournalClosedError: the journal is closed.
            ValueError: payload is larger than PAYLOAD_BYTES_MAX.
            JournalError: an earlier write or sync failed (the journal is unusable).
        """
        if len(payload) > PAYLOAD_BYTES_MAX:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {PAYLOAD_BYTES_MAX}")
        with self._state_lock:
            self._check_usable()
            self._replayed = None
            lsn = self._last_lsn + 1
            record = encode_record(lsn, bytes(payload))
            if self._hold:
                self._pending.append(record)
            elif not self._rewrite:
                try:
                    self._handle.write(record)
                except BaseException as exc:
                    if not is_no_space(exc):
                        self._failure = exc
                        raise
                    self._rewrite = True  # the file may end in part of it: see sync()
            self._unsynced.append(record)
            self._unsynced_bytes += len(record)
            self._last_lsn = lsn
            self._segment_bytes += len(record)
            self._bytes_since_snapshot += len(record)
            return lsn

    def _flush_pending_locked(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._handle.write(data)

    def _write_unsynced_locked(self) -> None:
        """Make the file hold its synced bytes followed by every unsynced record.

        Normally only held records are missing; after a failure for lack of space the tail
        is unknown, so it is cut back to the synced length and written again from memory.
        """
        if self._rewrite:
            self._pending.clear()
            self._handle.truncate(self._segment_bytes - self._unsynced_bytes)
            self._handle.write(b"".join(self._unsynced))
            self._rewrite = False
        else:
            self._flush_pending_locked()

    def _disk_failed_locked(self, exc: BaseException) -> None:
        """Record a failed write or sync: a full disk raises `JournalNoSpaceError` and the
        tail is rewritten at the next sync; anything else makes the journal unusable."""
        if is_no_space(exc):
            assert isinstance(exc, OSError)
            self._rewrite = True
            try:  # drop a partly written record now, so a kill meanwhile leaves no torn tail
                self._handle.truncate(self._segment_bytes - self._unsynced_bytes)
            except OSError:
                pass  # the next sync truncates again
            raise JournalNoSpaceError(self._path, exc) from exc
        self._failure = exc

    def _mark_synced_locked(self, target: int) -> None:
        """Everything up to `target` is durable: drop it from the unsynced records."""
        count = target - self._synced_lsn
        if count <= 0:
            return
        done = self._unsynced[:count]
        del self._unsynced[:count]
        self._unsynced_bytes -= sum(len(record) for record in done)
        self._synced_lsn = target
        assert len(self._unsynced) == self._last_lsn - self._synced_lsn

    def sync(self) -> None:
        """Return once every record appended before the call is durable.

        fdatasync of the segment(s), plus a directory sync when a segment was created.
        Appends from other threads proceed while it waits on the disk.

        Raises:
            JournalClosedError: the journal is closed.
            JournalNoSpaceError: the disk is full; nothing new is durable, retry later.
            JournalError: an earlier write or sync failed.
            OSError: the disk failed (the journal is then unusable).
        """
        with self._sync_lock:
            self._sync_holding_sync_lock()

    def _sync_holding_sync_lock(self) -> None:
        with self._state_lock:
            self._check_usable()
            target = self._last_lsn
            try:
                self._write_unsynced_locked()
            except BaseException as exc:
                self._disk_failed_locked(exc)
                raise
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            handle = self._handle
        try:
            if target > self._synced_lsn:
                handle.sync()
            if dir_dirty:
                self._fs.sync_dir(self._path)
        except BaseException as exc:
            with self._state_lock:
                self._dir_dirty = self._dir_dirty or dir_dirty
                self._disk_failed_locked(exc)
            raise
        with self._state_lock:
            self._mark_synced_locked(target)
            if self._segment_bytes >= self._segment_bytes_max:
                try:
                    self._roll_over_locked()
                except JournalNoSpaceError:
                    pass  # everything up to target is durable; a later sync rolls over

    def _roll_over_locked(self) -> None:
        """Start a new segment; the current one is first synced whole (holding the state lock
        for one fdatasync if appends arrived meanwhile, which happens once per segment)."""
        if self._segment_bytes == 0:
            return
        try:
            self._write_unsynced_locked()
            if self._last_lsn > self._synced_lsn:
                self._handle.sync()
                self._mark_synced_locked(self._last_lsn)
            first = self._last_lsn + 1
            name = segment_name(first)
            handle = self._fs.open_append(os.path.join(self._path, name), create=True)
        except BaseException as exc:
            self._disk_failed_locked(exc)
            raise
        assert not self._unsynced
        self._handle.close()
        self._handle = handle
        self._segment_first = first
        self._segment_bytes = 0
        self._segments.append((first, name))
        self._dir_dirty = True

    def snapshot(self, state: bytes, upto_lsn: int) -> None:
        """Store state as covering every record up to upto_lsn, then delete what it covers.

        Writes snap-<lsn>.tmp, syncs it, renames it to snap-<lsn>.cbor, syncs the directory,
        then deletes segments and older snapshots wholly covered. Syncs the journal first and
        starts a new segment, so the old ones become deletable.

        Raises:
            ValueError: upto_lsn is beyond last_lsn or below the current snapshot's LSN.
            JournalNoSpaceError: the disk is full; the temporary file is removed and the
                journal is as before (nothing deleted), so retry later.
            JournalClosedError, JournalError, OSError: as for `sync()`.
        """
        with self._sync_lock:
            if not self._snapshot_lsn <= upto_lsn <= self._last_lsn:
                raise ValueError(
                    f"upto_lsn {upto_lsn} outside [{self._snapshot_lsn}, {self._last_lsn}]"
                )
            self._sync_holding_sync_lock()
            with self._state_lock:
                self._check_usable()
                self._replayed = None
                self._roll_over_locked()
                rolled_at_lsn = self._segment_first - 1
                segments = list(self._segments)
            fs, path = self._fs, self._path
            data = encode_snapshot(upto_lsn, bytes(state))
            tmp_path = os.path.join(path, snapshot_tmp_name(upto_lsn))
            try:
                self._write_snapshot_file(tmp_path, data)
                fs.rename(tmp_path, os.path.join(path, snapshot_name(upto_lsn)))
                fs.sync_dir(path)
                kept = self._delete_covered(segments, upto_lsn)
                fs.sync_dir(path)
                older_bytes = self._bytes_after(kept, upto_lsn, rolled_at_lsn)
            except JournalNoSpaceError:
                raise
            except BaseException as exc:
                self._failure = exc
                raise
            with self._state_lock:
                self._segments = kept + self._segments[len(segments) :]
                self._snapshot_lsn = upto_lsn
                self._snapshot_bytes = len(data)
                self._bytes_since_snapshot = older_bytes + self._segment_bytes

    def _write_snapshot_file(self, tmp_path: str, data: bytes) -> None:
        """Write and sync the temporary snapshot file; on a full disk remove it again.

        Raises:
            JournalNoSpaceError: no space (the journal itself is untouched and usable).
        """
        fs = self._fs
        try:
            if fs.exists(tmp_path):
                fs.remove(tmp_path)
            handle = fs.open_append(tmp_path, create=True)
            try:
                handle.write(data)
                handle.sync()
            finally:
                handle.close()
        except OSError as exc:
            if not is_no_space(exc):
                raise
            try:
                if fs.exists(tmp_path):
                    fs.remove(tmp_path)
            except OSError:
                pass  # removed at the next open, like any leftover temporary file
            raise JournalNoSpaceError(self._path, exc) from exc

    def _delete_covered(
        self, segments: list[tuple[int, str]], upto_lsn: int
    ) -> list[tuple[int, str]]:
        fs, path = self._fs, self._path
        kept: list[tuple[int, str]] = []
        for index, (first, name) in enumerate(segments):
            is_last = index == len(segments) - 1
            if not is_last and segments[index + 1][0] - 1 <= upto_lsn:
                fs.remove(os.path.join(path, name))
            else:
                kept.append((first, name))
        for name in fs.list_dir(path):
            lsn = parse_snapshot_name(name)
            if lsn is not None and lsn < upto_lsn:
                fs.remove(os.path.join(path, name))
        return kept

    def _bytes_after(self, kept: list[tuple[int, str]], upto_lsn: int, rolled_at_lsn: int) -> int:
        """Bytes of records in (upto_lsn, rolled_at_lsn], read from the synced older segments."""
        total = 0
        if upto_lsn >= rolled_at_lsn:
            return 0
        for first, name in kept[:-1]:
            data = self._fs.read_file(os.path.join(self._path, name))
            offset, lsn = 0, first
            while offset + HEADER_BYTES <= len(data):
                length, _ = HEADER.unpack_from(data, offset)
                if lsn > upto_lsn:
                    total += HEADER_BYTES + length
                offset += HEADER_BYTES + length
                lsn += 1
        return total

    def close(self) -> None:
        """Close the files. Records not yet synced are written (not synced). Idempotent."""
        with self._sync_lock, self._state_lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._failure is None and self._rewrite:
                    # Leave no partly written record behind (none of these was synced).
                    self._handle.truncate(self._segment_bytes - self._unsynced_bytes)
                elif self._failure is None:
                    self._flush_pending_locked()
            except OSError as exc:
                if not is_no_space(exc):
                    raise
            finally:
                self._handle.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self._path!r} last_lsn={self._last_lsn} synced_lsn={self._synced_lsn}>"


_OPEN_TOKEN = object()
