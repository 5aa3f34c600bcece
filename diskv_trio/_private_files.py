"""Private files: what servers and the supervisor write is readable by their user alone.

Rules kept here:
- Server and supervisor processes run with umask 0o077, and every place that creates a
  file or directory also passes its mode (0o600 / 0o700), so neither alone is relied on.
- Files left by an older version with wider modes are tightened when a server opens its
  directory (only our own files; a file of another user is left for the operator).
- A shared directory such as /tmp is used only through a directory we created 0o700 and
  still own: an existing one that is a symlink, another user's, or open to others is
  refused, never used or removed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class UnsafeDirectoryError(Exception):
    """Raised when a directory we must keep private exists but is not ours alone."""


def restrict_umask() -> int:
    """Make files this process creates private from now on; return the previous umask."""
    return os.umask(PRIVATE_UMASK)


def make_private_directory(path: Path) -> None:
    """Create `path` (and missing parents) 0o700; tighten it if it already exists."""
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    _tighten(path)


def _tighten(path: Path) -> None:
    """Drop group and other access from one of our own files or directories."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        return
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)


def tighten_tree(directory: Path) -> None:
    """Remove group and other access from `directory`, its subdirectories and files.

    Symlinks are not followed; sockets and files of other users are left alone.
    """
    _tighten(directory)
    for root, directories, files in os.walk(directory):
        for name in directories:
            _tighten(Path(root, name))
        for name in files:
            path = Path(root, name)
            if stat.S_ISREG(path.lstat().st_mode):
                _tighten(path)


def private_shared_directory(path: Path) -> Path:
    """Create `path` 0o700 in a shared parent (e.g. /tmp), or check that ours already is.

    Raises:
        UnsafeDirectoryError: `path` exists and is a symlink, not a directory, owned by
            another user, or open to group or others.
    """
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY_MODE)
    except FileExistsError:
        pass
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectoryError(f"{path} exists and is not a directory; refusing to use it")
    if info.st_uid != os.getuid():
        raise UnsafeDirectoryError(
            f"{path} belongs to uid {info.st_uid}, not to us (uid {os.getuid()}); refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIRECTORY_MODE:
        raise UnsafeDirectoryError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):o}, not 700; refusing to use it"
        )
    return path
