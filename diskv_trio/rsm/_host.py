"""What a replica node runs on: the network it reaches its peers through and the disk its
directory lives on.

Rules kept here:
- A node touches sockets only through `Host.transport`, and its directory only through
  `Host.disk`: the journal, the identity file, the lock, the folders a lost disk's leftovers
  are moved to. `SYSTEM_HOST` is the operating system's sockets and files; a simulation
  builds one `Host` per simulated machine, so the same node code runs there unchanged.
- What the node reports as its process id comes from `Host.process_id`, so a simulated
  machine reports the same one in every replay.
- Blocking disk work runs through `Disk.run_sync`: in a worker thread on a real disk, so
  the Trio loop never waits for an fsync; inline on a disk in memory, whose timing then
  depends on nothing outside the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import trio

from diskv_trio._dirlock import lock_directory
from diskv_trio._private_files import make_private_directory, tighten_tree
from diskv_trio.net import SOCKETS, Transport
from journal import FileSystem, RealFileSystem

T = TypeVar("T")


class Disk(Protocol):
    """The disk a server keeps its directory on."""

    @property
    def fs(self) -> FileSystem:
        """Every file of the directory is read and written through this."""
        ...

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        """Run the blocking `function(*args)` and return its result (raise its exception)."""
        ...

    def lock_directory(self, directory: Path, holder: str) -> AbstractContextManager[object]:
        """Hold `directory` for this server alone while the block runs.

        Raises:
            DirectoryInUseError: another live server holds it.
        """
        ...

    def prepare_directory(self, directory: Path) -> None:
        """Create `directory` if missing, readable by this user alone."""
        ...


class LocalDisk:
    """The operating system's files: blocking calls in worker threads, `flock` for the lock,
    private modes (0o700 / 0o600) tightened on what an older version left wider."""

    def __init__(self) -> None:
        self._fs = RealFileSystem()

    @property
    def fs(self) -> FileSystem:
        return self._fs

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(function, *args)

    def lock_directory(self, directory: Path, holder: str) -> AbstractContextManager[object]:
        return lock_directory(directory, holder)

    def prepare_directory(self, directory: Path) -> None:
        make_private_directory(directory)
        tighten_tree(directory)


@dataclass(frozen=True, slots=True)
class Host:
    """A node's network and disk (see the module docstring), and the id of its process (the
    operating system's pid; a simulated machine numbers its own boots)."""

    transport: Transport
    disk: Disk
    process_id: Callable[[], int] = os.getpid


SYSTEM_HOST = Host(SOCKETS, LocalDisk())
"""The operating system's sockets and files: what every server process runs on."""
