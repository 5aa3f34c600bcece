"""Profiling a running server on request, for finding where its time goes under load.

With `DISKV_PROFILE_DIR` set in a server's environment, SIGUSR1 starts `cProfile` on the
server's Trio thread and SIGUSR2 stops it and writes ``DIR/diskv-<pid>.pstats`` (also written
at exit while a profile runs). Without the variable no handler is installed and nothing
changes. Times are the Trio thread's CPU time (`time.thread_time`), so waiting (in epoll, or
for a core on a busy machine) is charged to nothing; worker threads (journal syncs) are not
profiled. `python -m tools.bench kvprofile` uses it on a group's leader.
"""

from __future__ import annotations

import cProfile
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

PROFILE_DIR_ENV = "DISKV_PROFILE_DIR"
START_SIGNAL = signal.SIGUSR1
STOP_SIGNAL = signal.SIGUSR2


def profile_path(directory: Path, pid: int) -> Path:
    """Where the server of process `pid` writes its profile."""
    return directory / f"diskv-{pid}.pstats"


@contextmanager
def profiling_on_signals() -> Iterator[None]:
    """Within the block, SIGUSR1/SIGUSR2 start and stop a profile, if `DISKV_PROFILE_DIR` is set."""
    directory = os.environ.get(PROFILE_DIR_ENV)
    if not directory:
        yield
        return
    path = profile_path(Path(directory), os.getpid())
    profiler: cProfile.Profile | None = None

    def start(signum: int = 0, frame: FrameType | None = None) -> None:
        nonlocal profiler
        if profiler is None:
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()

    def stop(signum: int = 0, frame: FrameType | None = None) -> None:
        nonlocal profiler
        if profiler is None:
            return
        profiler.disable()
        partial = path.with_suffix(".partial")
        profiler.dump_stats(partial)
        os.replace(partial, path)  # a reader never sees half a file
        profiler = None

    previous = (signal.signal(START_SIGNAL, start), signal.signal(STOP_SIGNAL, stop))
    try:
        yield
    finally:
        stop()
        signal.signal(START_SIGNAL, previous[0])
        signal.signal(STOP_SIGNAL, previous[1])
