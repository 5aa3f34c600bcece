"""Unix-socket listeners: bind, and remove only the socket file we created."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat

import trio

logger = logging.getLogger("diskv.net")


def _socket_accepts(path: str) -> bool:
    """Whether some process still listens on the socket file at `path`.

    A non-blocking connect: refused means stale; accepted, or a full backlog (EAGAIN),
    means a live server whose socket must not be taken over.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def open_unix_listener(path: str) -> tuple[trio.SocketListener, tuple[int, int]]:
    """Bind a Unix socket at `path`, first removing a stale socket file (never another kind
    of file, nor a socket a live server still listens on). Returns the listener and the
    (device, inode) of the socket file created.

    Raises:
        FileExistsError: `path` exists and is not a socket.
        OSError: EADDRINUSE when a server still accepts connections on `path`.
    """
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(existing.st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a socket; not removing it", path)
        if _socket_accepts(path):
            raise OSError(errno.EADDRINUSE, "another server listens on this socket; stop it first", path)
        os.unlink(path)
        logger.info("removed stale socket file %s", path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(socket.SOMAXCONN)
        created = os.lstat(path)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock), (created.st_dev, created.st_ino)


def remove_socket_file(path: str, created: tuple[int, int]) -> None:
    """Remove our socket file, unless someone has since replaced it."""
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        return
    if (current.st_dev, current.st_ino) == created:
        os.unlink(path)
