"""One process per directory: an exclusive `flock` on a lock file held for the process's life.

Rules kept here:
- A server takes the lock on its data directory before it opens the journal, and `cluster
  up` on its data directory before it starts anything; a second process on the same
  directory fails at once, naming the holder, instead of writing into live journals.
- The lock file records the holder's pid and what it is, for that one error line. Its
  content is only a hint: the kernel's lock is the truth, and it dies with the holder
  (kill -9 included), so a stale file never blocks a restart.
- The descriptor is close-on-exec: children never inherit the lock.
- The lock file is never moved or deleted while held (disk-loss handling skips it).
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE_NAME = "LOCK"

HOLDER_BYTES_MAX = 256
"""Bytes of the lock file read to name the holder: a pid and a short name fit easily."""


class DirectoryInUseError(Exception):
    """Raised when another live process holds the directory's lock.

    Attributes:
        directory: the directory.
        holder: what the lock file says about the holder ("pid 1234 (shardkv-100-0)"),
            or "another process" when it says nothing readable.
    """

    def __init__(self, directory: Path, holder: str) -> None:
        self.directory = directory
        self.holder = holder
        super().__init__(f"{directory} is in use by {holder}; stop it first")


class DirectoryLock:
    """A held lock on a directory; `release()` (or leaving the `with` block) drops it."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock). Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _describe_holder(fd: int) -> str:
    try:
        raw = os.pread(fd, HOLDER_BYTES_MAX, 0).decode("utf-8", "replace").split()
    except OSError:
        raw = []
    if raw and raw[0].isdigit():
        what = " ".join(raw[1:])
        return f"pid {raw[0]} ({what})" if what else f"pid {raw[0]}"
    return "another process"


def _record_holder(fd: int, line: bytes) -> None:
    """Overwrite the file with `line`; on a full disk leave it empty rather than wrong.

    Written in place before truncating, so a file from an earlier run needs no new block.
    """
    try:
        os.pwrite(fd, line, 0)
        os.ftruncate(fd, len(line))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        os.ftruncate(fd, 0)


def lock_directory(directory: Path, holder: str) -> DirectoryLock:
    """Create `directory` (private) if missing and lock it for this process.

    Args:
        holder: what this process is, written beside its pid (e.g. "shardkv-100-0").
    Raises:
        DirectoryInUseError: another live process holds the lock.
        OSError: the directory or lock file cannot be created or opened.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / LOCK_FILE_NAME
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise DirectoryInUseError(directory, _describe_holder(fd)) from None
        os.fchmod(fd, 0o600)
        _record_holder(fd, f"{os.getpid()} {holder}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return DirectoryLock(directory, fd)
