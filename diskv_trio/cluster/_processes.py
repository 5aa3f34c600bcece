"""Starting server processes that never outlive their supervisor.

A child started here gets `DISKV_PARENT_PID`; the server exits cleanly as soon as its parent
process is gone (see `diskv_trio.cli`), even when the supervisor itself was SIGKILLed.
(Linux's parent-death signal is no help here: it fires when the *thread* that forked exits,
and Trio forks from short-lived worker threads.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from diskv_trio.net import TLS_DIR_ENV

PARENT_PID_ENV = "DISKV_PARENT_PID"


async def start_process(argv: Sequence[str], log_path: Path) -> trio.Process:
    """Start `argv` with stdin from /dev/null and stdout/stderr appended to `log_path`."""
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env[PARENT_PID_ENV] = str(os.getpid())
    env.pop(TLS_DIR_ENV, None)  # a server uses the --tls-dir it is given, or none
    log_fd = _open_log(log_path)
    try:
        return await trio.lowlevel.open_process(
            list(argv), stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, env=env
        )
    finally:
        os.close(log_fd)


def _open_log(path: Path) -> int:
    """Open a server's log for appending, private to our user (logs name keys and values)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # a log from an older version may be wider
    return fd


def python_module_argv(*args: str) -> list[str]:
    """`python -m diskv_trio ARGS` with the interpreter running us."""
    return [sys.executable, "-m", "diskv_trio", *args]
