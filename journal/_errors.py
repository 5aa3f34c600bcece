"""Journal errors, one class per cause.

File-system failures (`OSError`, e.g. `PermissionError`, `EIO`) are not wrapped: they
propagate unchanged from every call, because their cause is the machine, not the journal.
A full disk is the one exception (`JournalNoSpaceError`): it is expected to pass, and the
journal stays usable through it.
"""

from __future__ import annotations


class JournalError(Exception):
    """Base class of every error the journal raises on purpose."""


class CorruptJournalError(JournalError):
    """The journal holds damage that replay must not paper over.

    Raised by `Journal.open` (and reported, not raised, by `scan`) when a bad record has
    valid records after it, when a segment other than the newest one is damaged, when LSNs
    have a gap, or when the newest snapshot is damaged and the segments an older one would
    need are gone. Nothing on disk is modified when this is raised.

    Attributes:
        segment: file name (segment or snapshot) where the damage is.
        offset: byte offset in that file of the first bad record (0 for a snapshot).
        lsn: the LSN the bad record should have carried.
        reason: a short human description.
    """

    def __init__(self, segment: str, offset: int, lsn: int, reason: str) -> None:
        self.segment = segment
        self.offset = offset
        self.lsn = lsn
        self.reason = reason
        super().__init__(f"corrupt journal at {segment} offset {offset} (lsn {lsn}): {reason}")


class NotAJournalError(JournalError):
    """The path cannot hold a journal.

    Raised by `Journal.open` when the path exists but is not a directory, and by `scan`
    (and so the tool) also when the directory is not empty yet holds no segment or snapshot.
    """


class JournalClosedError(JournalError):
    """A method other than `close()` was called on a closed journal."""


class JournalNoSpaceError(JournalError):
    """The disk is full (ENOSPC) or the user's quota is reached (EDQUOT).

    Raised by `sync()` and `snapshot()`, never by `append()`, which keeps its record in
    memory. Nothing appended since the last `sync()` that returned is durable; the journal
    stays usable, and the next `sync()` cuts the segment back to its last synced length and
    writes those records again, so the caller retries once space returns. A failed
    snapshot leaves the journal as it was.

    Attributes:
        path: the journal's directory.
        errno: ENOSPC or EDQUOT.
    """

    def __init__(self, path: str, cause: OSError) -> None:
        self.path = path
        self.errno = cause.errno
        super().__init__(f"no space left for journal {path}: {cause.strerror or cause}")
