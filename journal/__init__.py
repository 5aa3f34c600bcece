"""diskv-trio's write-ahead journal: CRC32C-framed records in segments, snapshots, replay.

A standalone package (it imports nothing from diskv_trio). The format and the guarantees
are described in journal/README.md and in the module docstrings.
"""

from ._errors import (
    CorruptJournalError,
    JournalClosedError,
    JournalError,
    JournalNoSpaceError,
    NotAJournalError,
)
from ._format import RECORD_BYTES_MAX
from ._fs import FileHandle, FileSystem, RealFileSystem
from ._group_commit import GroupCommit, RunSync
from ._journal import (
    COMPACT_FLOOR_BYTES,
    HOLD_UNSYNCED_ENV,
    PAYLOAD_BYTES_MAX,
    SEGMENT_BYTES_MAX_DEFAULT,
    Journal,
    OpenReport,
    is_no_space,
)
from ._reader import JournalContents, read_journal
from ._repair import RepairResult, clear_force_repaired, is_force_repaired, repair
from ._scan import (
    FORCED_REPAIR_MARKER,
    ScanReport,
    SegmentInfo,
    SnapshotInfo,
    Verdict,
    scan,
)
from ._sim_fs import SimulatedCrash, SimulatedFileSystem

__all__ = [
    "COMPACT_FLOOR_BYTES",
    "FORCED_REPAIR_MARKER",
    "HOLD_UNSYNCED_ENV",
    "PAYLOAD_BYTES_MAX",
    "RECORD_BYTES_MAX",
    "SEGMENT_BYTES_MAX_DEFAULT",
    "CorruptJournalError",
    "FileHandle",
    "FileSystem",
    "GroupCommit",
    "Journal",
    "JournalClosedError",
    "JournalContents",
    "JournalError",
    "JournalNoSpaceError",
    "NotAJournalError",
    "OpenReport",
    "RealFileSystem",
    "RepairResult",
    "RunSync",
    "ScanReport",
    "SegmentInfo",
    "SimulatedCrash",
    "SimulatedFileSystem",
    "SnapshotInfo",
    "Verdict",
    "clear_force_repaired",
    "is_no_space",
    "is_force_repaired",
    "read_journal",
    "repair",
    "scan",
]
