"""PySyncObj's pipelined replicated write rate: the baseline the kv Puts/s are set against.

Three PySyncObj processes (Raft, pure Python) on loopback TCP form a group; the process that
wins the election writes to a replicated dict (100-byte values, the kv bench's size) from its
own main thread with `WINDOW` writes in flight (async callbacks, no client network hop) for the
load period, and reports the writes whose commit callback arrived within it. Settings are
PySyncObj's defaults (batched append entries, log compaction every 5,000 entries) with its
in-memory journal, as the figure quoted for it was measured; the run with its file journal
(``journalFile`` plus ``fullDumpFile``) is printed beside it. Neither syncs to disk per write
(the file journal is an mmap without msync), while every diskv replica fdatasyncs its journal.

`python -m tools.bench pysyncobj` prints both; `baseline()` is what the kv bench compares with
(measured once per process). Needs the ``pysyncobj`` package (`nox -s bench` installs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._options import load_seconds

DURATION_S = 4.0
"""Seconds of counted writes in each run (`--seconds` of `python -m tools.bench` changes it)."""
WINDOW = 2000
"""Writes in flight at once from the leader for the baseline (PySyncObj queues up to 100,000).
Its rate grows with the window (its ticks batch what is queued); `run` also shows others."""
OTHER_WINDOWS = (256, 20_000)
WARMUP_S = 0.5
"""Writes completing in the first half second after the leader is known are not counted."""
LEADER_TIMEOUT_S = 20.0
VALUE = "v" * 100
KEYS = 1000
ROOT = Path(__file__).resolve().parents[2]

SKIP_LINE = (
    "PySyncObj baseline skipped: the pysyncobj package is not installed"
    " (`nox -s bench` installs it; or `pip install pysyncobj` here)"
)


@dataclass(frozen=True)
class Rate:
    """One PySyncObj run: committed writes per second and what else its leader saw."""

    journal: str
    window: int
    writes_per_s: float
    failed: int
    seconds: float

    def line(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"PySyncObj, 3 processes, {self.journal} journal: {self.writes_per_s:,.0f} "
            f"committed writes/s ({self.window:,} in flight, {self.seconds:g} s{failed})"
        )


def available() -> bool:
    return importlib.util.find_spec("pysyncobj") is not None


# -- one PySyncObj process (the child) ------------------------------------------------------


def _node_main(
    index: int, ports: list[int], seconds: float, window: int, directory: Path, file_journal: bool
) -> None:
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    class Store(SyncObj):
        def __init__(self, me: str, others: list[str], conf: Any) -> None:
            super().__init__(me, others, conf)
            self.data: dict[str, str] = {}

        @replicated
        def put(self, key: str, value: str) -> None:
            self.data[key] = value

    nodes = [f"127.0.0.1:{port}" for port in ports]
    journal: dict[str, Any] = {}
    if file_journal:
        journal = {
            "journalFile": str(directory / f"journal-{index}.bin"),
            "fullDumpFile": str(directory / f"dump-{index}.bin"),
        }
    store = Store(nodes[index], nodes[:index] + nodes[index + 1 :], SyncObjConf(**journal))
    parent = os.getppid()
    deadline = time.monotonic() + LEADER_TIMEOUT_S
    while not (store.isReady() and store._getLeader() is not None):
        if time.monotonic() > deadline or os.getppid() != parent:
            return
        time.sleep(0.01)
    if not store._isLeader():
        sys.stdin.read()  # a follower serves until the parent closes our stdin or is gone
        return
    slots = threading.Semaphore(window)
    counted_from = time.monotonic() + WARMUP_S
    counted_until = counted_from + seconds
    tally = {"ok": 0, "failed": 0}

    def done(result: object, error: int) -> None:
        now = time.monotonic()
        if error != FAIL_REASON.SUCCESS:
            tally["failed"] += 1
        elif counted_from <= now < counted_until:
            tally["ok"] += 1
        slots.release()

    n = 0
    while time.monotonic() < counted_until:
        if slots.acquire(timeout=0.1):
            store.put(f"k{n % KEYS}", VALUE, callback=done)
            n += 1
    result = {"ok": tally["ok"], "failed": tally["failed"], "seconds": seconds}
    (directory / "result.partial").write_text(json.dumps(result))
    os.replace(directory / "result.partial", directory / "result.json")
    sys.stdin.read()


# -- the parent: start three, wait for the leader's figure, stop them all -------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def measure(seconds: float, *, window: int = WINDOW, file_journal: bool = False) -> Rate | None:
    """One run of three processes; None (with a line printed) if no figure came back."""
    directory = Path(tempfile.mkdtemp(prefix="dkvb-pso-", dir="/tmp"))
    ports = _free_ports(3)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(3):
            argv = [sys.executable, "-m", "tools.bench.pysyncobj", "--node", str(index)]
            argv += ["--ports", ",".join(map(str, ports)), "--seconds", str(seconds)]
            argv += ["--window", str(window)]
            argv += ["--dir", str(directory)] + (["--file-journal"] if file_journal else [])
            with (directory / f"node-{index}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        argv, stdin=subprocess.PIPE, stdout=log, stderr=log, cwd=ROOT, env=env
                    )
                )
        deadline = time.monotonic() + LEADER_TIMEOUT_S + WARMUP_S + seconds + 10
        result_path = directory / "result.json"
        while not result_path.exists():
            if time.monotonic() > deadline or all(p.poll() is not None for p in processes):
                tail = (directory / "node-0.log").read_text(errors="replace")[-600:]
                print(f"PySyncObj: no figure came back (node 0's log ends: {tail!r})")
                return None
            time.sleep(0.05)
        result = json.loads(result_path.read_text())
    finally:
        _stop(processes)
        shutil.rmtree(directory, ignore_errors=True)
    journal = "file (mmap, no sync per write)" if file_journal else "in-memory"
    return Rate(
        journal, window, result["ok"] / result["seconds"], result["failed"], result["seconds"]
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.stdin is not None:
            process.stdin.close()  # ends a child's wait; a child whose parent dies exits too
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_measured: Rate | None = None


def baseline() -> Rate | None:
    """PySyncObj's rate (in-memory journal), measured once per process; None: not installed."""
    global _measured
    if _measured is None and available():
        _measured = measure(load_seconds(DURATION_S))
    return _measured


def run() -> None:
    if not available():
        print(SKIP_LINE)
        return
    rate = baseline()
    if rate is not None:
        print(rate.line())
    others = [measure(load_seconds(DURATION_S), file_journal=True)]
    others += [measure(load_seconds(DURATION_S), window=window) for window in OTHER_WINDOWS]
    for other in others:
        if other is not None:
            print(other.line())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="PySyncObj write-rate baseline (one node with --node)"
    )
    parser.add_argument("--node", type=int)
    parser.add_argument("--ports")
    parser.add_argument("--seconds", type=float, default=DURATION_S)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--file-journal", action="store_true")
    args = parser.parse_args(argv)
    if args.node is None:
        run()
        return
    ports = [int(p) for p in args.ports.split(",")]
    _node_main(args.node, ports, args.seconds, args.window, args.dir, args.file_journal)
    os._exit(0)  # PySyncObj's tick thread is not a daemon: leave without waiting for it


if __name__ == "__main__":
    main()
