"""Process kills: a writer killed with SIGKILL at random moments never loses a synced record.

Each round forks a writer that appends, syncs and snapshots on a real directory in a loop,
reporting every synced LSN over a pipe; the parent kills it after a random delay (the delay
is the randomness of the test, not synchronisation; every other round first waits for the
writer's first report, so that half the kills land in a running loop), reopens the journal,
and checks that
open succeeds, that every reported LSN is there, and that each record holds what the writer
put there (payload = its LSN, snapshot state = its LSN). Half of the rounds hold unsynced
records in memory, so a kill also loses them as power loss would. A few rounds run the
writer as a fresh `python -c` process instead of a fork, switched to that mode by the
environment variable.
"""

from __future__ import annotations

import inspect
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import journal as journal_package
from journal import Journal

FORK_ROUNDS = 300
EXEC_ROUNDS = 4
DELAY_S_MAX = 0.015


def write_forever(path: str, seed: int, report_fd: int, hold: bool) -> None:
    """The writer: append, sync or snapshot, report each synced LSN, until killed."""
    import os
    import random

    from journal import Journal

    rng = random.Random(seed)
    journal = Journal.open(path, segment_bytes_max=2048, hold_unsynced=hold)
    while True:
        for _ in range(rng.randint(1, 20)):
            journal.append(b"%d" % (journal.last_lsn + 1))
        if rng.random() < 0.1:
            upto = rng.randint(journal.snapshot_lsn, journal.last_lsn)
            journal.snapshot(b"%d" % upto, upto)
        else:
            journal.sync()
        os.write(report_fd, b"%d\n" % journal.synced_lsn)


def _check(path: Path, reported: int) -> None:
    with Journal.open(path) as journal:
        assert journal.last_lsn >= reported
        start = 0
        if journal.loaded_snapshot is not None:
            start, state = journal.loaded_snapshot
            assert state == b"%d" % start
        records = list(journal)
        assert [lsn for lsn, _ in records] == list(range(start + 1, journal.last_lsn + 1))
        assert all(payload == b"%d" % lsn for lsn, payload in records)


def _read_until_first_line(read_fd: int) -> bytes:
    data = b""
    while b"\n" not in data and (chunk := os.read(read_fd, 65536)):
        data += chunk
    return data


def _read_reports(read_fd: int, prefix: bytes) -> int:
    data = prefix
    while chunk := os.read(read_fd, 65536):
        data += chunk
    lines = data.split(b"\n")[:-1]  # a line is written whole; drop a partial one if any
    return max((int(line) for line in lines), default=0)


def _fork_round(path: Path, seed: int, hold: bool, delay_s: float, wait_first: bool) -> int:
    """Run one writer and kill it; with wait_first, only after its first report."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: never returns
        try:
            os.close(read_fd)
            write_forever(str(path), seed, write_fd, hold)
        finally:
            os._exit(1)
    prefix = b""
    try:
        os.close(write_fd)
        if wait_first:
            prefix = _read_until_first_line(read_fd)
        time.sleep(delay_s)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        return _read_reports(read_fd, prefix)
    finally:
        os.close(read_fd)


def test_sigkill_at_random_moments_loses_no_synced_record(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    rounds_with_progress = 0
    for round_number in range(FORK_ROUNDS):
        path = tmp_path / f"j{round_number % 10}"  # ten journals, each killed many times
        wait_first = round_number % 2 == 0
        seed, hold, delay_s = (
            rng.randrange(1 << 30),
            rng.random() < 0.5,
            rng.uniform(0, DELAY_S_MAX),
        )
        reported = _fork_round(path, seed, hold, delay_s, wait_first)
        _check(path, reported)
        rounds_with_progress += reported > 0
    assert rounds_with_progress >= FORK_ROUNDS // 2


def test_sigkill_of_a_separate_python_process(tmp_path: Path) -> None:
    repo_root = str(Path(journal_package.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": repo_root, "DISKV_JOURNAL_HOLD_UNSYNCED": "1"}
    path = tmp_path / "j"
    script = (
        inspect.getsource(write_forever)
        + f"\nimport sys\nwrite_forever({str(path)!r}, int(sys.argv[1]), 1, False)\n"
    )
    total_reported = 0
    for seed in range(EXEC_ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(seed)], stdout=subprocess.PIPE, env=env
        )
        try:
            assert child.stdout is not None
            first = child.stdout.readline()  # wait until it has synced something
            assert first.endswith(b"\n")
            time.sleep(random.Random(seed).uniform(0, 0.05))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert child.stdout is not None
        rest = child.stdout.read()
        child.stdout.close()
        lines = (first + rest).split(b"\n")[:-1]
        reported = max(int(line) for line in lines)
        _check(path, reported)
        total_reported = max(total_reported, reported)
    assert total_reported > 0
