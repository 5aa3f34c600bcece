"""Offline repair of a journal directory, and the forced-repair marker.

A torn tail is repaired as `Journal.open` would. Corruption is repaired only when forced:
the damaged data is set aside (nothing is deleted), the journal is cut back to its last good
record, and the FORCED-REPAIR marker tells a server that it must treat itself as having lost
its disk, since records it may have acknowledged are gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._fs import FileSystem, RealFileSystem
from ._journal import broken_name, copy_aside, truncate_file
from ._scan import FORCED_REPAIR_MARKER, ScanReport, scan

# Each forced round removes at least one damaged file or cuts one segment; a journal needing
# more rounds than this is not one this tool understands.
FORCE_ROUNDS_MAX = 64


def is_force_repaired(path: str | os.PathLike[str], *, fs: FileSystem | None = None) -> bool:
    """Whether the journal at path was cut back by a forced repair (see FORCED_REPAIR_MARKER)."""
    fs = fs or RealFileSystem()
    return fs.exists(os.path.join(os.fspath(path), FORCED_REPAIR_MARKER))


def clear_force_repaired(path: str | os.PathLike[str], *, fs: FileSystem | None = None) -> None:
    """Remove the forced-repair marker (once the server recovered as after disk loss)."""
    fs = fs or RealFileSystem()
    path = os.fspath(path)
    marker = os.path.join(path, FORCED_REPAIR_MARKER)
    if fs.exists(marker):
        fs.remove(marker)
        fs.sync_dir(path)


@dataclass
class RepairResult:
    """What `repair` did (or, with dry_run, would do): one line per action."""

    verdict_before: str
    actions: list[str] = field(default_factory=list)
    refused: bool = False  # corruption found and force not given
    forced: bool = False


def _write_marker(fs: FileSystem, path: str) -> None:
    marker = os.path.join(path, FORCED_REPAIR_MARKER)
    if fs.exists(marker):
        return
    handle = fs.open_append(marker, create=True)
    try:
        handle.write(
            b"journal cut back by a forced repair: treat this server as having lost its disk\n"
        )
        handle.sync()
    finally:
        handle.close()


def repair(
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    dry_run: bool = False,
    fs: FileSystem | None = None,
) -> RepairResult:
    """Repair the journal at path.

    Torn tail: copy the segment aside as .broken, truncate it at the bad record. Damaged
    snapshot with an older replacement: move it aside. Corruption: refused unless force,
    which sets aside the damaged segment (copy, then truncate at the first bad record) or
    snapshot, moves every later segment aside, and writes the FORCED_REPAIR_MARKER.

    Raises:
        NotAJournalError, FileNotFoundError, OSError: as `scan`.
    """
    fs = fs or RealFileSystem()
    path = os.fspath(path)
    report = scan(path, fs=fs)
    result = RepairResult(verdict_before=str(report.verdict))
    if report.verdict.kind == "corrupt" and not force:
        result.refused = True
        return result
    rounds = 0
    while report.verdict.kind == "corrupt":
        rounds += 1
        if rounds > FORCE_ROUNDS_MAX:
            raise RuntimeError(f"forced repair did not converge after {FORCE_ROUNDS_MAX} rounds")
        result.forced = True
        _force_one(fs, path, report, dry_run, result.actions)
        if dry_run:
            break
        report = scan(path, fs=fs)
    if not dry_run or not result.forced:
        for name in report.damaged_snapshots:
            target = broken_name(fs, path, name)
            result.actions.append(f"move damaged snapshot {name} aside as {target}")
            if not dry_run:
                fs.rename(os.path.join(path, name), os.path.join(path, target))
        verdict = report.verdict
        if verdict.kind == "torn-tail":
            assert verdict.segment is not None and verdict.offset is not None
            size = fs.file_size(os.path.join(path, verdict.segment))
            target = broken_name(fs, path, verdict.segment)
            result.actions.append(f"copy {verdict.segment} to {target}")
            result.actions.append(
                f"truncate {verdict.segment} at offset {verdict.offset} "
                f"(drop {size - verdict.offset} bytes from lsn {verdict.lsn})"
            )
            if not dry_run:
                copy_aside(fs, path, verdict.segment)
                truncate_file(fs, os.path.join(path, verdict.segment), verdict.offset)
    if result.forced:
        result.actions.append(
            f"write {FORCED_REPAIR_MARKER}: the server must recover as after disk loss"
        )
        if not dry_run:
            _write_marker(fs, path)
    if result.actions and not dry_run:
        fs.sync_dir(path)
    return result


def _force_one(
    fs: FileSystem, path: str, report: ScanReport, dry_run: bool, actions: list[str]
) -> None:
    verdict = report.verdict
    assert verdict.segment is not None and verdict.offset is not None
    segment_names = [s.name for s in report.segments]
    if verdict.segment not in segment_names:  # a snapshot
        target = broken_name(fs, path, verdict.segment)
        actions.append(f"move damaged snapshot {verdict.segment} aside as {target}")
        if not dry_run:
            fs.rename(os.path.join(path, verdict.segment), os.path.join(path, target))
        return
    index = segment_names.index(verdict.segment)
    later = segment_names[index + 1 :]
    if verdict.offset == 0:
        later = segment_names[index:]
    else:
        target = broken_name(fs, path, verdict.segment)
        actions.append(f"copy {verdict.segment} to {target}")
        actions.append(
            f"truncate {verdict.segment} at offset {verdict.offset} (lsn {verdict.lsn} onwards)"
        )
        if not dry_run:
            copy_aside(fs, path, verdict.segment)
            truncate_file(fs, os.path.join(path, verdict.segment), verdict.offset)
    for name in later:
        target = broken_name(fs, path, name)
        actions.append(f"move segment {name} aside as {target}")
        if not dry_run:
            fs.rename(os.path.join(path, name), os.path.join(path, target))
