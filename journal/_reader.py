"""Reading a journal without opening it for writing: for tools that show what is on disk.

Rules kept here:
- Nothing is modified: a torn tail stays torn, leftover files stay (`Journal.open` would
  repair both). Only valid records are returned, oldest first, stopping at the first bad one;
  the report says why reading stopped.
- Segments the snapshot covers are read too (a dump shows history still on disk).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from ._fs import FileSystem, RealFileSystem
from ._scan import ReplayChunk, ScanReport, analyse


@dataclass(frozen=True, slots=True)
class JournalContents:
    """What `read_journal` found: the scan report, the snapshot in use, the records."""

    report: ScanReport
    snapshot: tuple[int, bytes] | None
    """``(lsn, state)`` of the newest valid snapshot, or None."""
    _chunks: tuple[ReplayChunk, ...]

    def records(self) -> Iterator[tuple[int, bytes]]:
        """``(lsn, payload)`` of every valid record on disk, oldest first."""
        for chunk in self._chunks:
            yield from chunk


def read_journal(path: str | os.PathLike[str], *, fs: FileSystem | None = None) -> JournalContents:
    """The journal at `path` as it is on disk, read-only.

    Raises:
        NotAJournalError: path is not a directory.
        FileNotFoundError: path does not exist.
        OSError: reading failed.
    """
    analysis = analyse(os.fspath(path), fs or RealFileSystem(), collect_records=True, from_first_segment=True)
    snapshot = None
    if analysis.snapshot_state is not None:
        snapshot = (analysis.report.snapshot_lsn, analysis.snapshot_state)
    return JournalContents(analysis.report, snapshot, tuple(analysis.records))
