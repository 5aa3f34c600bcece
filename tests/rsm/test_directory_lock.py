"""The directory lock, disk-loss handling beside it, and the live-socket check, in-process.

Checks: a second lock on a held directory fails naming the holder, and succeeds once released;
moving a lost disk aside keeps the lock file (and so the lock) in place; a Unix socket a
server still listens on is never removed as stale, while a dead one is replaced.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest
import trio

from diskv_trio._dirlock import LOCK_FILE_NAME, DirectoryInUseError, lock_directory
from diskv_trio.net._unix_listener import open_unix_listener
from diskv_trio.rsm._node import _move_aside


def test_a_held_directory_cannot_be_locked_again_until_released(tmp_path: Path) -> None:
    directory = tmp_path / "g100-0"
    with lock_directory(directory, "shardkv-100-0"):
        with pytest.raises(DirectoryInUseError) as raised:
            lock_directory(directory, "shardkv-100-0")
        assert str(raised.value) == (
            f"{directory} is in use by pid {os.getpid()} (shardkv-100-0); stop it first"
        )
    with lock_directory(directory, "again") as lock:
        assert lock.held
        assert (directory / LOCK_FILE_NAME).read_text() == f"{os.getpid()} again\n"
    assert (directory / LOCK_FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_moving_a_lost_disk_aside_keeps_the_lock(tmp_path: Path) -> None:
    directory = tmp_path / "g100-0"
    with lock_directory(directory, "shardkv-100-0"):
        (directory / "0000000000000001.log").write_bytes(b"x")
        lost = _move_aside(directory, "test")
        assert lost is not None
        assert (directory / LOCK_FILE_NAME).exists()
        assert not (lost / LOCK_FILE_NAME).exists()
        assert lost.stat().st_mode & 0o777 == 0o700
        assert (lost / "REASON").stat().st_mode & 0o777 == 0o600
        with pytest.raises(DirectoryInUseError):
            lock_directory(directory, "second")


async def test_a_live_socket_is_never_removed_and_a_dead_one_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    listener, _ = await open_unix_listener(path)
    try:
        with pytest.raises(OSError) as raised:
            await open_unix_listener(path)
        assert raised.value.errno == errno.EADDRINUSE
        assert raised.value.filename == path
        probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with probe:
            await probe.connect(path)  # the first listener still owns the path
    finally:
        await listener.aclose()
    # Closed without unlinking: a stale file that the next server may take over.
    assert os.path.exists(path)
    second, _ = await open_unix_listener(path)
    await second.aclose()
