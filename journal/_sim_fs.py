"""An in-memory file system that can crash like a machine losing power.

Rules it keeps (those of a Linux file system with ordered data writes):

- Written bytes are visible at once, and durable only after `sync()` of that file.
- Creates, renames and removes are durable only after `sync_dir()` of their directory; a
  crash reverts a directory to its last synced listing (a removed file comes back, a created
  one vanishes, a rename is undone).
- At `crash()`, each file keeps its synced bytes plus a random prefix of the bytes written
  after them, optionally followed by garbage (zeros or random bytes) standing in for the
  pages that were in flight. Damage is thus always at the tail of what was not synced, as
  for an append-only file written in order; a bit flip in the middle is corruption, which
  tests make by hand.
- Directories themselves are durable as soon as `make_dirs()` returns.

`crash_after(n)` makes the (n+1)-th mutating call from now raise `SimulatedCrash` without
taking effect, so tests can crash in the middle of a snapshot, a rollover or a repair.

Everything is seeded, so a failing crash test replays from its seed.
"""

from __future__ import annotations

import errno
import os
import random
from dataclasses import dataclass, field


class SimulatedCrash(Exception):
    """Raised by a `SimulatedFileSystem` call that `crash_after` chose as the crash point."""


@dataclass
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


class _SimulatedFileHandle:
    def __init__(self, fs: SimulatedFileSystem, inode: _Inode) -> None:
        self._fs = fs
        self._inode = inode
        self._generation = fs._generation
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "file handle is closed")
        if self._generation != self._fs._generation:
            raise OSError(errno.EIO, "file handle from before a simulated crash")

    def write(self, data: bytes) -> None:
        self._check()
        self._fs._tick()
        self._inode.data += data

    def sync(self) -> None:
        self._check()
        self._fs._tick()
        self._fs.file_sync_count += 1
        self._inode.durable = bytes(self._inode.data)

    def truncate(self, size_bytes: int) -> None:
        self._check()
        self._fs._tick()
        del self._inode.data[size_bytes:]

    def close(self) -> None:
        self._closed = True


class SimulatedFileSystem:
    """A `FileSystem` in memory whose `crash()` loses what was not synced.

    Attributes:
        file_sync_count: number of file syncs (fdatasync) so far.
        dir_sync_count: number of directory syncs so far.
    """

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._dirs: dict[str, dict[str, _Inode]] = {}
        self._durable_dirs: dict[str, dict[str, _Inode]] = {}
        self._generation = 0
        self.file_sync_count = 0
        self.dir_sync_count = 0
        self._calls_until_crash: int | None = None

    def crash_after(self, calls: int | None) -> None:
        """Let `calls` more mutating calls through, then raise `SimulatedCrash` on the next.

        None disarms it; so does `crash()`.
        """
        self._calls_until_crash = calls

    def _tick(self) -> None:
        if self._calls_until_crash is None:
            return
        if self._calls_until_crash == 0:
            raise SimulatedCrash("simulated crash point")
        self._calls_until_crash -= 1

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        path = os.path.normpath(path)
        return os.path.dirname(path), os.path.basename(path)

    def _dir(self, path: str) -> dict[str, _Inode]:
        entries = self._dirs.get(os.path.normpath(path))
        if entries is None:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        return entries

    def _inode(self, path: str) -> _Inode:
        parent, name = self._split(path)
        inode = self._dir(parent).get(name)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", path)
        return inode

    def make_dirs(self, path: str) -> None:
        path = os.path.normpath(path)
        while path not in self._dirs:
            self._dirs[path] = {}
            self._durable_dirs[path] = {}
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent

    def is_dir(self, path: str) -> bool:
        return os.path.normpath(path) in self._dirs

    def is_file(self, path: str) -> bool:
        parent, name = self._split(path)
        return name in self._dirs.get(parent, {})

    def exists(self, path: str) -> bool:
        if self.is_dir(path):
            return True
        parent, name = self._split(path)
        return name in self._dirs.get(parent, {})

    def list_dir(self, path: str) -> list[str]:
        path = os.path.normpath(path)
        names = list(self._dir(path))
        names += [
            os.path.basename(d) for d in self._dirs if d != path and os.path.dirname(d) == path
        ]
        return names

    def read_file(self, path: str) -> bytes:
        return bytes(self._inode(path).data)

    def file_size(self, path: str) -> int:
        return len(self._inode(path).data)

    def open_append(self, path: str, *, create: bool) -> _SimulatedFileHandle:
        parent, name = self._split(path)
        entries = self._dir(parent)
        if create:
            self._tick()
            if name in entries:
                raise FileExistsError(errno.EEXIST, "file exists", path)
            entries[name] = _Inode()
        return _SimulatedFileHandle(self, self._inode(path))

    def rename(self, source: str, target: str) -> None:
        self._tick()
        inode = self._inode(source)
        source_parent, source_name = self._split(source)
        target_parent, target_name = self._split(target)
        target_entries = self._dir(target_parent)
        del self._dir(source_parent)[source_name]
        target_entries[target_name] = inode

    def remove(self, path: str) -> None:
        self._tick()
        self._inode(path)
        parent, name = self._split(path)
        del self._dir(parent)[name]

    def sync_dir(self, path: str) -> None:
        path = os.path.normpath(path)
        self._tick()
        self.dir_sync_count += 1
        self._durable_dirs[path] = dict(self._dir(path))

    def write_file(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Create or replace a file (a test helper), durable by default."""
        parent, name = self._split(path)
        inode = _Inode(bytearray(data), bytes(data) if durable else b"")
        self._dir(parent)[name] = inode
        if durable:
            self._durable_dirs[os.path.normpath(parent)][name] = inode

    def crash(self) -> None:
        """Lose power: keep what was synced, a seeded part of the rest, maybe garbage after it.

        Open handles become unusable (they raise `OSError`), as after a reboot.
        """
        self._generation += 1
        self._calls_until_crash = None
        inodes: dict[int, _Inode] = {}
        for entries in self._durable_dirs.values():
            for inode in entries.values():
                inodes[id(inode)] = inode
        for inode in inodes.values():
            content = self._surviving_bytes(inode)
            inode.data = bytearray(content)
            inode.durable = content
        self._dirs = {path: dict(entries) for path, entries in self._durable_dirs.items()}

    def _surviving_bytes(self, inode: _Inode) -> bytes:
        durable, data = inode.durable, bytes(inode.data)
        if not data.startswith(durable):
            return self._rng.choice([durable, data])
        unsynced = data[len(durable) :]
        keep = self._rng.randint(0, len(unsynced))
        content = durable + unsynced[:keep]
        lost = len(unsynced) - keep
        if lost and self._rng.random() < 0.5:
            garbage_bytes = self._rng.randint(1, lost)
            if self._rng.random() < 0.5:
                content += bytes(garbage_bytes)
            else:
                content += self._rng.randbytes(garbage_bytes)
        return content
