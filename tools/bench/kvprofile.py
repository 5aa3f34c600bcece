"""Where the leader's time goes: a profile of a group's leader under the kv bench's load.

A 1-group x 3-replica cluster is started with `DISKV_PROFILE_DIR` set (see
`diskv_trio/_profiling.py`), so each server starts `cProfile` on SIGUSR1 and writes it on
SIGUSR2. For each phase (64 tasks of Puts, then of Gets, from this process) the leader is
profiled for the load period alone; printed: the rate under the profiler (which slows the
leader, so the rate is below the kv bench's), the CPU each server process used (every
thread, from /proc), and the leader's top functions by own and by cumulative CPU time of its
Trio thread. Journal syncs run in worker threads, not profiled: they count only in the CPU
row, as does time the leader is idle (it is charged to no function).
"""

from __future__ import annotations

import os
import pstats
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

from diskv_trio._profiling import PROFILE_DIR_ENV, START_SIGNAL, STOP_SIGNAL, profile_path
from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster

from ._options import load_seconds
from .kv import KEYS_PER_TASK, VALUE, _leader_of, _load

ROOT = Path(__file__).resolve().parents[2]
STDLIB = sysconfig.get_paths()["stdlib"]
DURATION_S = load_seconds(4.0)
TASKS = 64
TOP = 15
DUMP_WAIT_S = 15.0
CLUSTER = "bench"


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Servers started inside inherit `name=value`; the old value is back afterwards."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid`, all its threads (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _where(path: str) -> str:
    """A short name for a source file: from its package on (diskv_trio/..., trio/..., stdlib/...)."""
    if path == "~":
        return ""  # a built-in: its name says enough
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1]
    for prefix, shown in ((str(ROOT) + "/", ""), (STDLIB + "/", "stdlib/")):
        if path.startswith(prefix):
            return shown + path[len(prefix) :]
    return path


def _table(stats: pstats.Stats, key: str) -> list[str]:
    """The top `TOP` functions by own time (key "own") or cumulative time ("cum")."""
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values()) or 1.0
    index = 2 if key == "own" else 3
    ranked = sorted(entries.items(), key=lambda item: item[1][index], reverse=True)[:TOP]
    lines = [f"  {'own s':>7} {'own %':>6} {'cum s':>7} {'calls':>9}  function"]
    for (path, line, name), (_cc, calls, tt, ct, _callers) in ranked:
        where = _where(path)
        label = f"{where}:{line}({name})" if where else name
        lines.append(f"  {tt:7.2f} {tt / total:6.1%} {ct:7.2f} {calls:9,}  {label}")
    return lines


async def _profile_phase(
    cluster: Any, leader: str, name: str, op: Callable[[int, int], Awaitable[object]], out: Path
) -> None:
    process = cluster.spec(leader).process
    path = profile_path(out, process.pid)
    path.unlink(missing_ok=True)
    pids = {n: cluster.spec(n).process.pid for n in cluster.group_servers(cluster.gids[0])}
    pids["bench (clients)"] = os.getpid()
    cpu_before = {n: _cpu_seconds(pid) for n, pid in pids.items()}
    process.send_signal(START_SIGNAL)
    started = time.monotonic()
    rate, _latencies = await _load(TASKS, DURATION_S, op)
    process.send_signal(STOP_SIGNAL)
    wall = time.monotonic() - started
    cpu = {n: (_cpu_seconds(pid) - cpu_before[n]) / wall for n, pid in pids.items()}
    print(f"{name}, {TASKS} concurrent, leader {leader} under the profiler: {rate:,.0f} ops/s")
    print("CPU used over the phase: " + ", ".join(f"{n} {share:.0%}" for n, share in cpu.items()))
    with trio.move_on_after(DUMP_WAIT_S):
        while not path.exists():  # noqa: ASYNC110 - another process writes it
            await trio.sleep(0.05)
    if not path.exists():
        print(f"(no profile written by {leader} within {DUMP_WAIT_S:g} s)")
        return
    stats = pstats.Stats(str(path))
    print(f"{leader}, top {TOP} by own time ({name}):")
    print("\n".join(_table(stats, "own")))
    print(f"{leader}, top {TOP} by cumulative time ({name}):")
    print("\n".join(_table(stats, "cum")))
    current = await _leader_of(cluster, cluster.gids[0])
    if current != leader:
        print(f"(the leader changed during the phase: now {current})")


async def _main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="dkvb-prof-", dir="/tmp"))
    out = directory / "profiles"
    out.mkdir()
    try:
        with _environment(PROFILE_DIR_ENV, str(out)):
            cluster_cm = open_local_cluster(directory / "c", groups=1, replicas=3, cluster=CLUSTER)
            async with cluster_cm as cluster:
                await cluster.join(cluster.gids[0])
                async with connect(
                    cluster.masters, cluster=CLUSTER, credentials=cluster.credentials
                ) as kv:
                    await kv.put("warm", "up")
                    leader = await _leader_of(cluster, cluster.gids[0])
                    if leader is None:
                        print("no leader found: nothing profiled")
                        return

                    async def put(me: int, n: int) -> None:
                        await kv.put(f"bench-{me}-{n % KEYS_PER_TASK}", VALUE)

                    async def get(me: int, n: int) -> None:
                        await kv.get(f"bench-{me}-{n % KEYS_PER_TASK}")

                    await _load(TASKS, 0.5, put)  # warm: connections, the leader's window
                    for name, op in (("puts", put), ("gets", get)):
                        await _profile_phase(cluster, leader, name, op, out)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run() -> None:
    trio.run(_main)


if __name__ == "__main__":
    run()
