"""The file layer under the journal: a narrow interface, the real one, and nothing else.

The journal touches the disk only through `FileSystem`, so tests can put
`SimulatedFileSystem` under it and crash it, losing what was not yet synced. Paths are
plain strings; every method raises `OSError` like the os module does.
"""

from __future__ import annotations

import os
from typing import Protocol

PRIVATE_FILE_MODE = 0o600
"""Journal files hold the whole application state: readable by their user alone."""

PRIVATE_DIRECTORY_MODE = 0o700
"""Directories the journal creates, for the same reason."""


class FileHandle(Protocol):
    """A file open for appending."""

    def write(self, data: bytes) -> None:
        """Append all of data (reaches the page cache: survives a process kill, not power loss)."""

    def sync(self) -> None:
        """Make everything written so far durable (fdatasync)."""

    def truncate(self, size_bytes: int) -> None: ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    def make_dirs(self, path: str) -> None: ...

    def is_dir(self, path: str) -> bool: ...

    def is_file(self, path: str) -> bool:
        """A regular file (not a directory, socket or other special file)."""

    def exists(self, path: str) -> bool: ...

    def list_dir(self, path: str) -> list[str]: ...

    def read_file(self, path: str) -> bytes: ...

    def file_size(self, path: str) -> int: ...

    def open_append(self, path: str, *, create: bool) -> FileHandle:
        """Open for appending; create=True requires that the file does not exist yet."""

    def rename(self, source: str, target: str) -> None: ...

    def remove(self, path: str) -> None: ...

    def sync_dir(self, path: str) -> None:
        """Make creates, renames and removes in the directory durable (fsync of the directory)."""


class _RealFileHandle:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def truncate(self, size_bytes: int) -> None:
        os.ftruncate(self._fd, size_bytes)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class RealFileSystem:
    """The operating system's files, written with unbuffered os.write."""

    def make_dirs(self, path: str) -> None:
        os.makedirs(path, mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def list_dir(self, path: str) -> list[str]:
        return os.listdir(path)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as file:
            return file.read()

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def open_append(self, path: str, *, create: bool) -> FileHandle:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        return _RealFileHandle(os.open(path, flags, PRIVATE_FILE_MODE))

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target)

    def remove(self, path: str) -> None:
        os.remove(path)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
