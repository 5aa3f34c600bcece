"""The identity file: how a server tells a restart from a disk loss.

Rules kept here:
- A server writes `IDENTITY` once it holds a complete state: at its very first start
  (`--bootstrap`) or at the end of a disk-loss recovery.
- A directory without `IDENTITY` whose server was not told it is brand new has lost its disk.
- An identity that names another role, group or replica index is an operator error: the
  server refuses to start rather than serve somebody else's data.
- The file is replaced atomically (temp file, fsync, rename, fsync of the directory), and
  is private to its user (0o600), as is everything a server writes.
- Files are read and written through a `journal.FileSystem` (the real one by default), so a
  simulated disk holds them beside the journal and loses them with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from journal import FileSystem, RealFileSystem

IDENTITY_FILE_NAME = "IDENTITY"


class IdentityMismatchError(Exception):
    """Raised when a directory belongs to a different server than the one starting on it."""


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """Who owns a data directory."""

    cluster: str
    role: str
    group: int
    me: int

    def to_wire(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "role": self.role, "group": self.group, "me": self.me}


def write_atomically(path: Path, data: bytes, fs: FileSystem | None = None) -> None:
    """Replace `path` with `data` so a crash leaves either the old or the new file.

    A leftover temp file is removed first, so the new one is created private (0o600) rather
    than keeping an old mode.
    """
    fs = fs if fs is not None else RealFileSystem()
    temp = str(path.with_name(path.name + ".tmp"))
    if fs.exists(temp):
        fs.remove(temp)
    handle = fs.open_append(temp, create=True)
    try:
        handle.write(data)
        handle.sync()
    finally:
        handle.close()
    fs.rename(temp, str(path))
    fs.sync_dir(str(path.parent))


def read_identity(directory: Path, fs: FileSystem | None = None) -> ServerIdentity | None:
    """Return the identity stored in `directory`, or None if it has none.

    Raises:
        IdentityMismatchError: the file exists but cannot be read as an identity.
    """
    fs = fs if fs is not None else RealFileSystem()
    path = directory / IDENTITY_FILE_NAME
    try:
        raw = fs.read_file(str(path))
    except FileNotFoundError:
        return None
    try:
        data = cbor2.loads(raw)
        return ServerIdentity(
            cluster=str(data["cluster"]),
            role=str(data["role"]),
            group=int(data["group"]),
            me=int(data["me"]),
        )
    except Exception as exc:  # any decoding problem means the file is not ours
        raise IdentityMismatchError(f"{path}: unreadable identity file ({exc})") from exc


def write_identity(directory: Path, identity: ServerIdentity, fs: FileSystem | None = None) -> None:
    """Record that `directory` now holds a complete state for `identity`.

    The file also says when, in wall-clock time, for an operator reading it; nothing reads
    that back.
    """
    data = identity.to_wire() | {"written_at": time.time()}
    write_atomically(directory / IDENTITY_FILE_NAME, cbor2.dumps(data), fs)


def check_identity(found: ServerIdentity, expected: ServerIdentity, directory: Path) -> None:
    """Refuse to start on a directory that belongs to another server.

    Raises:
        IdentityMismatchError: naming the directory and both identities.
    """
    if found != expected:
        raise IdentityMismatchError(
            f"{directory} belongs to {found.role} group {found.group} replica {found.me} "
            f"of cluster {found.cluster!r}, not to {expected.role} group {expected.group} "
            f"replica {expected.me} of cluster {expected.cluster!r}"
        )
