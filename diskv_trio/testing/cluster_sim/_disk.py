"""A simulated machine's disk: the journal's `SimulatedFileSystem` behind a power switch.

Rules kept here:
- It is a `diskv_trio.rsm.Disk`: the node reads and writes its whole directory through it
  (journal, identity file, lost-* folders), takes its lock from it, and runs its blocking
  calls through `run_sync`, inline after a seeded latency (ending on the 1 ms grid of
  `_grid`): no worker thread, so nothing about its timing comes from outside the run.
- `crash()` is a power cut: writes not synced are lost (a seeded part of them survives, maybe
  with garbage after it), and every file system object and handle of the old boot fails with
  EIO from then on, so a node being torn down cannot write after its crash. `wipe()` is a
  lost disk: nothing survives. `corrupt_journal()` flips a byte in a record that has a good
  record after it (damage that no repair may take for a torn write). `power_on()` starts a
  new boot.
- The directory lock is kept in memory (`flock` means nothing inside one process): a second
  server on the same directory is still refused, and a crash releases the lock as the kernel
  does. Files have no modes here, so making the directory private is only creating it.
- Every write to a journal segment is shown to a `tap` (the agreement check reads the Paxos
  records in them), unsynced ones included: a decision a replica journalled is a decision,
  even if a crash loses it later.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from diskv_trio._dirlock import DirectoryInUseError
from journal import FileHandle, FileSystem, SimulatedFileSystem

from ._grid import on_grid
from ._trace import Trace

T = TypeVar("T")

Tap = Callable[[bytes], None]
"""Receives the bytes of every write to a journal segment, in order."""

SEGMENT_SUFFIX = ".log"
"""Journal segments end so (journal/_format.py); nothing else is tapped."""

RECORD_HEADER_BYTES = 8
"""u32 length | u32 crc32c before each record's body (journal/README.md)."""

RECORD_PREFIX_BYTES = RECORD_HEADER_BYTES + 9
"""Header, then the body's type (u8) and LSN (u64): the payload starts after these."""

FAST_DISK_S = (0.0001, 0.001)
"""Latency range of one blocking call (an fsync, a snapshot) on a healthy disk."""


def _powered_off() -> OSError:
    return OSError(errno.EIO, "simulated disk: powered off since this was opened")


class _Handle:
    """A file handle of one boot; shows segment writes to the tap."""

    def __init__(self, disk: SimDisk, boot: int, inner: FileHandle, tap: Tap | None) -> None:
        self._disk = disk
        self._boot = boot
        self._inner = inner
        self._tap = tap

    def write(self, data: bytes) -> None:
        self._disk.check_boot(self._boot)
        self._inner.write(data)
        if self._tap is not None:
            self._tap(bytes(data))

    def sync(self) -> None:
        self._disk.check_boot(self._boot)
        self._inner.sync()

    def truncate(self, size_bytes: int) -> None:
        self._disk.check_boot(self._boot)
        self._inner.truncate(size_bytes)

    def close(self) -> None:
        self._inner.close()


class _BootFileSystem:
    """The disk's files as seen by one boot: every call fails once that boot is over."""

    def __init__(self, disk: SimDisk, boot: int) -> None:
        self._disk = disk
        self._boot = boot

    def _fs(self) -> SimulatedFileSystem:
        self._disk.check_boot(self._boot)
        return self._disk.files

    def make_dirs(self, path: str) -> None:
        self._fs().make_dirs(path)

    def is_dir(self, path: str) -> bool:
        return self._fs().is_dir(path)

    def is_file(self, path: str) -> bool:
        return self._fs().is_file(path)

    def exists(self, path: str) -> bool:
        return self._fs().exists(path)

    def list_dir(self, path: str) -> list[str]:
        return self._fs().list_dir(path)

    def read_file(self, path: str) -> bytes:
        return self._fs().read_file(path)

    def file_size(self, path: str) -> int:
        return self._fs().file_size(path)

    def open_append(self, path: str, *, create: bool) -> FileHandle:
        inner = self._fs().open_append(path, create=create)
        tap = self._disk.tap if path.endswith(SEGMENT_SUFFIX) else None
        return _Handle(self._disk, self._boot, inner, tap)

    def rename(self, source: str, target: str) -> None:
        self._fs().rename(source, target)

    def remove(self, path: str) -> None:
        self._fs().remove(path)

    def sync_dir(self, path: str) -> None:
        self._fs().sync_dir(path)


class SimDisk:
    """One simulated machine's disk (see the module docstring).

    Args:
        name: the machine's name, for the trace.
        rng: the disk's seeded random source (latency, what a crash keeps).
        trace: where crashes and wipes are recorded.
        tap: shown every write to a journal segment.
    """

    def __init__(self, name: str, rng: random.Random, trace: Trace, tap: Tap | None = None) -> None:
        self.name = name
        self._rng = rng
        self._trace = trace
        self.tap = tap
        self.files = SimulatedFileSystem(rng.getrandbits(64))
        self.latency_s = FAST_DISK_S
        self._boot = 1
        self._powered = True
        self._fs_view = _BootFileSystem(self, self._boot)
        self._locks: set[str] = set()
        self.crashes = 0
        self.wipes = 0

    # ---- the Disk protocol --------------------------------------------------------------

    @property
    def fs(self) -> FileSystem:
        return self._fs_view

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        # Shielded like a worker thread, which a cancelled caller still waits for.
        with trio.CancelScope(shield=True):
            await trio.sleep_until(
                on_grid(trio.current_time() + self._rng.uniform(*self.latency_s))
            )
        return function(*args)

    @contextmanager
    def _held(self, directory: str, boot: int) -> Iterator[object]:
        try:
            yield directory
        finally:
            if boot == self._boot:
                self._locks.discard(directory)

    def lock_directory(self, directory: Path, holder: str) -> Any:
        self.check_boot(self._boot)
        key = str(directory)
        if key in self._locks:
            raise DirectoryInUseError(directory, f"another simulated server ({holder})")
        self._locks.add(key)
        return self._held(key, self._boot)

    def prepare_directory(self, directory: Path) -> None:
        self.fs.make_dirs(str(directory))

    # ---- faults -------------------------------------------------------------------------

    def check_boot(self, boot: int) -> None:
        if boot != self._boot or not self._powered:
            raise _powered_off()

    def crash(self) -> None:
        """Cut the power: what was not synced is (partly) lost; the old boot's files fail."""
        self._power_off()
        self.files.crash()
        self.crashes += 1
        self._trace.event("disk-crash", self.name)

    def wipe(self) -> None:
        """Lose the disk: an empty one replaces it."""
        self._power_off()
        self.files = SimulatedFileSystem(self._rng.getrandbits(64))
        self.wipes += 1
        self._trace.event("disk-wipe", self.name)

    def corrupt_journal(self, directory: str) -> bool:
        """Flip a byte in the payload of the first record of `directory`'s newest segment,
        if another record follows it; False (nothing done) otherwise."""
        files = self.files
        if not files.is_dir(directory):
            return False
        segments = sorted(n for n in files.list_dir(directory) if n.endswith(SEGMENT_SUFFIX))
        if not segments:
            return False
        path = f"{directory}/{segments[-1]}"
        data = bytearray(files.read_file(path))
        if len(data) < RECORD_HEADER_BYTES:
            return False
        first_bytes = RECORD_HEADER_BYTES + int.from_bytes(data[:4], "big")
        if len(data) < first_bytes + RECORD_HEADER_BYTES or first_bytes <= RECORD_PREFIX_BYTES:
            return False
        data[self._rng.randrange(RECORD_PREFIX_BYTES, first_bytes)] ^= 0xFF
        files.write_file(path, bytes(data))
        self._trace.event("disk-corrupt", self.name, segments[-1])
        return True

    def power_on(self) -> None:
        self._boot += 1
        self._powered = True
        self._fs_view = _BootFileSystem(self, self._boot)

    def _power_off(self) -> None:
        self._powered = False
        self._locks.clear()
