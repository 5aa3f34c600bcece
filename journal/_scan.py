"""Reading a journal directory without changing it: the analysis behind open, scan and the tool.

Rules it keeps:
- The newest snapshot that decodes and passes its CRC is used. A damaged newer snapshot is
  skipped only if the segments the older one needs are all there (replay then reaches past
  the damaged snapshot's LSN); otherwise the journal is corrupt.
- Segments wholly covered by the snapshot are not read.
- Records are replayed in order. The first bad record ends replay: at the tail of the newest
  segment with no valid record after it, it is a torn tail; anywhere else, or with a valid
  record after it, or as an LSN that does not follow, it is corruption.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from crc32c import crc32c

from ._errors import NotAJournalError
from ._format import (
    BODY_BYTES_MIN,
    BODY_PREFIX,
    HEADER,
    HEADER_BYTES,
    RECORD_BYTES_MAX,
    TYPE_DATA,
    SnapshotDamagedError,
    check_record_at,
    decode_snapshot,
    parse_segment_name,
    parse_snapshot_name,
)
from ._fs import FileSystem, RealFileSystem

# How far past a bad record's LSN to look for a valid successor. A successor proves the
# damage is not a torn write; one bit flip damages at most one record, so a small window is
# ample, and each LSN in it costs one pass of bytes.find over the rest of the segment.
SUCCESSOR_LSN_LOOKAHEAD_MAX = 32
FORCED_REPAIR_MARKER = "FORCED-REPAIR"
TMP_SUFFIX = ".tmp"
BROKEN_SUFFIX = ".broken"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What replay makes of a journal: "clean", "torn-tail" or "corrupt" (with where)."""

    kind: str
    segment: str | None = None
    offset: int | None = None
    lsn: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.kind == "clean":
            return "clean"
        where = f"{self.segment} offset {self.offset} (lsn {self.lsn})"
        label = "torn tail" if self.kind == "torn-tail" else "corrupt"
        return f"{label} at {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    name: str
    first_lsn: int
    last_lsn: int  # first_lsn - 1 when the segment holds no valid record
    record_count: int
    size_bytes: int
    valid_bytes: int
    covered: bool  # wholly covered by the snapshot in use: not read


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    name: str
    lsn: int
    size_bytes: int
    valid: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything `scan` found; nothing was modified to find it."""

    path: str
    segments: tuple[SegmentInfo, ...]
    snapshots: tuple[SnapshotInfo, ...]
    snapshot_lsn: int  # 0 when no snapshot is in use
    last_lsn: int
    verdict: Verdict
    damaged_snapshots: tuple[str, ...]  # newer than the one in use, skipped
    temp_files: tuple[str, ...]
    forced_repair: bool

    @property
    def record_count(self) -> int:
        """Valid records in the segments read (some may precede the snapshot's LSN)."""
        return sum(s.record_count for s in self.segments if not s.covered)

    @property
    def records_after_snapshot(self) -> int:
        return self.last_lsn - self.snapshot_lsn

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments) + sum(s.size_bytes for s in self.snapshots)


@dataclass
class Analysis:
    report: ScanReport
    snapshot_state: bytes | None
    records: list[ReplayChunk] = field(default_factory=list)
    bytes_since_snapshot: int = 0
    snapshot_bytes: int = 0
    newest_segment: str | None = None
    newest_segment_valid_bytes: int = 0


def _is_recognised(name: str) -> bool:
    return (
        parse_segment_name(name) is not None
        or parse_snapshot_name(name) is not None
        or name.endswith(TMP_SUFFIX)
        or BROKEN_SUFFIX in name
        or name == FORCED_REPAIR_MARKER
    )


def _find_successor(data: bytes, bad_offset: int, lsn: int) -> int | None:
    """Return the offset of a valid record with LSN in [lsn, lsn + lookahead] after bad_offset."""
    for candidate_lsn in range(lsn, lsn + SUCCESSOR_LSN_LOOKAHEAD_MAX + 1):
        pattern = BODY_PREFIX.pack(TYPE_DATA, candidate_lsn)
        position = data.find(pattern, bad_offset + HEADER_BYTES + 1)
        while position >= 0:
            start = position - HEADER_BYTES
            found = check_record_at(data, start)
            if found is not None and found[1] == candidate_lsn:
                return start
            position = data.find(pattern, position + 1)
    return None


def analyse(
    path: str,
    fs: FileSystem,
    *,
    collect_records: bool,
    from_first_segment: bool = False,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Read the journal at path and judge it. See the module docstring for the rules.

    Args:
        collect_records: keep (lsn, payload) of records after the snapshot in use.
        from_first_segment: also read (and collect) segments covered by the snapshot.
    Raises:
        NotAJournalError: path is not a directory.
        OSError: reading failed.
    """
    if not fs.is_dir(path):
        if fs.exists(path):
            raise NotAJournalError(f"{path} is not a directory")
        raise FileNotFoundError(2, "no such directory", path)
    names = fs.list_dir(path)
    segments = sorted((lsn, n) for n in names if (lsn := parse_segment_name(n)) is not None)
    snapshot_names = sorted(
        ((lsn, n) for n in names if (lsn := parse_snapshot_name(n)) is not None), reverse=True
    )
    temp_files = tuple(sorted(n for n in names if n.endswith(TMP_SUFFIX)))

    snapshots: list[SnapshotInfo] = []
    chosen: tuple[int, str, bytes, int] | None = None
    damaged: list[tuple[int, str]] = []
    for lsn, name in snapshot_names:
        data = fs.read_file(os.path.join(path, name))
        if chosen is not None:
            snapshots.append(SnapshotInfo(name, lsn, len(data), True, "older, not read"))
            continue
        try:
            state = decode_snapshot(data, lsn)
        except SnapshotDamagedError as exc:
            snapshots.append(SnapshotInfo(name, lsn, len(data), False, str(exc)))
            damaged.append((lsn, name))
            continue
        snapshots.append(SnapshotInfo(name, lsn, len(data), True))
        chosen = (lsn, name, state, len(data))
    snapshot_lsn = chosen[0] if chosen else 0
    analysis = Analysis(
        report=None,  # type: ignore[arg-type]  # filled in below
        snapshot_state=chosen[2] if chosen else None,
        snapshot_bytes=chosen[3] if chosen else 0,
    )

    # The chain of segments replay needs starts at the last one beginning at or before
    # snapshot_lsn + 1.
    start = 0
    for index, (first, _) in enumerate(segments):
        if first <= snapshot_lsn + 1:
            start = index
    if from_first_segment:
        start = 0
    verdict = Verdict("clean")
    infos: list[SegmentInfo] = []
    last_lsn = snapshot_lsn
    for first, name in segments[:start]:
        size = fs.file_size(os.path.join(path, name))
        infos.append(SegmentInfo(name, first, first - 1, 0, size, size, True))
    chain = segments[start:]
    if chain and chain[0][0] > snapshot_lsn + 1 and damaged:
        lsn, name = damaged[0]
        verdict = Verdict(
            "corrupt", name, 0, lsn, "snapshot damaged and the segments an older one needs are gone"
        )
    elif chain and chain[0][0] > snapshot_lsn + 1:
        first, name = chain[0]
        verdict = Verdict(
            "corrupt",
            name,
            0,
            snapshot_lsn + 1,
            f"lsn gap: segment starts at lsn {first}, replay needs lsn {snapshot_lsn + 1}",
        )
    total_bytes = sum(fs.file_size(os.path.join(path, n)) for _, n in chain)
    done_bytes = 0
    expected = chain[0][0] if chain else snapshot_lsn + 1
    for position, (first, name) in enumerate(chain):
        if verdict.kind != "clean":
            size = fs.file_size(os.path.join(path, name))
            infos.append(SegmentInfo(name, first, first - 1, 0, size, 0, False))
            continue
        data = fs.read_file(os.path.join(path, name))
        is_newest = position == len(chain) - 1
        if first != expected:
            verdict = Verdict(
                "corrupt",
                name,
                0,
                expected,
                f"lsn gap: segment starts at lsn {first}, expected {expected}",
            )
            infos.append(SegmentInfo(name, first, first - 1, 0, len(data), 0, False))
            continue
        keep_from = first if from_first_segment else max(first, snapshot_lsn + 1)
        offsets: array[int] | None = array("Q") if collect_records else None
        offset, count, since_bytes = _parse_records(data, first, snapshot_lsn, offsets, keep_from)
        if offsets:
            analysis.records.append(ReplayChunk(data, offsets, keep_from))
        expected = first + count
        if offset < len(data):
            found = check_record_at(data, offset)
            verdict = _judge_bad_record(data, name, offset, expected, found, is_newest)
        analysis.bytes_since_snapshot += since_bytes
        last_lsn = max(last_lsn, expected - 1)
        infos.append(SegmentInfo(name, first, first + count - 1, count, len(data), offset, False))
        if is_newest:
            analysis.newest_segment = name
            analysis.newest_segment_valid_bytes = offset
        done_bytes += len(data)
        if progress is not None:
            progress(done_bytes, total_bytes)

    damaged_names = tuple(name for _, name in damaged)
    if verdict.kind != "corrupt" and damaged and last_lsn < damaged[0][0]:
        newest_damaged_lsn, newest_damaged = damaged[0]
        verdict = Verdict(
            "corrupt",
            newest_damaged,
            0,
            newest_damaged_lsn,
            "snapshot damaged and the records an older snapshot would need are gone",
        )

    analysis.report = ScanReport(
        path=path,
        segments=tuple(infos),
        snapshots=tuple(snapshots),
        snapshot_lsn=snapshot_lsn,
        last_lsn=last_lsn,
        verdict=verdict,
        damaged_snapshots=damaged_names,
        temp_files=temp_files,
        forced_repair=FORCED_REPAIR_MARKER in names,
    )
    return analysis


def _parse_records(
    data: bytes,
    first_lsn: int,
    snapshot_lsn: int,
    offsets: array[int] | None,
    keep_from_lsn: int,
) -> tuple[int, int, int]:
    """Walk the valid records of one segment, stopping at the first bad one.

    The hot loop of replay, written out flat (no per-record calls but the CRC) because its
    Python overhead per record is what bounds replay speed. It records offsets, not payload
    copies: allocating an object per record costs more than checking the record.

    Returns:
        (end offset of the last valid record, valid record count, bytes of records whose
        LSN is above snapshot_lsn); the offsets of records from keep_from_lsn on are
        appended to offsets when it is given.
    """
    unpack_header = HEADER.unpack_from
    unpack_prefix = BODY_PREFIX.unpack_from
    view = memoryview(data)
    end = len(data)
    offset = 0
    lsn = first_lsn
    since_start = 0 if first_lsn > snapshot_lsn else -1
    keep = offsets.append if offsets is not None else None
    keep_from = keep_from_lsn if keep is not None else -1
    header_bytes = HEADER_BYTES
    body_min, body_max = BODY_BYTES_MIN, RECORD_BYTES_MAX
    while end - offset >= header_bytes:
        length, crc = unpack_header(data, offset)
        body_start = offset + header_bytes
        body_end = body_start + length
        if length < body_min or length > body_max or body_end > end:
            break
        if crc32c(view[body_start:body_end]) != crc:
            break
        record_type, record_lsn = unpack_prefix(data, body_start)
        if record_lsn != lsn or record_type != TYPE_DATA:
            break
        if lsn == keep_from:
            keep_from = -1
        if keep_from < 0 and keep is not None:
            keep(offset)
        if lsn == snapshot_lsn:
            since_start = body_end
        offset = body_end
        lsn += 1
    since_bytes = offset - since_start if since_start >= 0 else 0
    return offset, lsn - first_lsn, since_bytes


@dataclass(frozen=True, slots=True)
class ReplayChunk:
    """Records of one segment kept for replay: the segment's bytes and record offsets."""

    data: bytes
    offsets: array[int]
    first_lsn: int

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        unpack_header = HEADER.unpack_from
        data = self.data
        lsn = self.first_lsn
        skip = HEADER_BYTES + BODY_BYTES_MIN
        for offset in self.offsets:
            length = unpack_header(data, offset)[0]
            yield lsn, data[offset + skip : offset + HEADER_BYTES + length]
            lsn += 1


def _judge_bad_record(
    data: bytes,
    name: str,
    offset: int,
    expected: int,
    found: tuple[int, int, int] | None,
    is_newest: bool,
) -> Verdict:
    if found is not None:
        return Verdict(
            "corrupt", name, offset, expected, f"record carries lsn {found[1]}, expected {expected}"
        )
    if not is_newest:
        return Verdict(
            "corrupt", name, offset, expected, "bad record in a segment that is not the newest"
        )
    successor = _find_successor(data, offset, expected)
    if successor is not None:
        return Verdict(
            "corrupt",
            name,
            offset,
            expected,
            f"bad record with a valid record after it (offset {successor})",
        )
    remaining = len(data) - offset
    if remaining < HEADER_BYTES:
        reason = f"short header ({remaining} bytes)"
    else:
        reason = f"bad or incomplete last record ({remaining} bytes to the end)"
    return Verdict("torn-tail", name, offset, expected, reason)


def scan(
    path: str | os.PathLike[str],
    *,
    fs: FileSystem | None = None,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Report on the journal at path without modifying anything.

    Args:
        progress: called as progress(bytes_done, bytes_total) after each segment read.
    Raises:
        NotAJournalError: path is a file, or a non-empty directory with no journal file.
        FileNotFoundError: path does not exist.
        OSError: reading failed (e.g. PermissionError).
    """
    path = os.fspath(path)
    fs = fs or RealFileSystem()
    if fs.is_dir(path):
        names = fs.list_dir(path)
        if names and not any(_is_recognised(n) for n in names):
            raise NotAJournalError(f"{path} holds no journal segment or snapshot")
    return analyse(path, fs, collect_records=False, progress=progress).report
