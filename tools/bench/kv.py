"""Client throughput and latency against a local 1-group x 3-replica cluster.

Figures: Puts and Gets per second (100-byte values, journals syncing) with 1, 64 and 256
concurrent client tasks, median and p99 latency, and the time the group takes to serve
writes again after its leader is killed (SIGKILL); and Puts and Gets from 4 client processes
of 64 tasks each (`kv_processes.py`). Beside them, baselines of the same run: plain RPC round
trips to one replica (`rsm.status`) over the same sockets, and PySyncObj's pipelined write
rate with 3 processes (`pysyncobj.py`, measured before the cluster starts; skipped in one line
where the package is missing), with the ratio of the 64- and 256-task Puts/s to it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster

from . import kv_processes, pysyncobj
from ._options import load_seconds

DURATION_S = load_seconds(4.0)
VALUE = "v" * 100
KEYS_PER_TASK = 50
FAILOVERS = 3
PROCESSES = 4
"""Client processes of the spread-out rows (64 tasks each)."""


async def _rpc_baseline(cluster: Any, seconds: float) -> float:
    address = cluster.servers[cluster.group_servers(cluster.gids[0])[0]].address
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await cluster.pool.call(address, "rsm.status", {}, deadline_s=5)
        count += 1
    return count / seconds


async def _load(
    tasks: int, seconds: float, op: Callable[[int, int], Awaitable[object]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(me: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            await op(me, n)
            latencies.append(time.monotonic() - started)
            n += 1

    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for me in range(tasks):
            nursery.start_soon(worker, me)
    return len(latencies) / (time.monotonic() - started), latencies


def _pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def _leader_of(cluster: Any, gid: int) -> str | None:
    for name in cluster.group_servers(gid):
        if not cluster.is_running(name):
            continue
        try:
            status = await cluster.status(name)
        except Exception:  # a server that does not answer is not the leader we want
            continue
        if status.get("paxos", {}).get("leading"):
            return name
    return None


async def _failover(cluster: Any, kv: Any) -> float | None:
    """Seconds from SIGKILL of the leader to the next acknowledged Put; None: no leader."""
    gid = cluster.gids[0]
    leader = await _leader_of(cluster, gid)
    if leader is None:
        return None
    await cluster.kill(leader)
    killed = time.monotonic()
    await kv.put("failover", str(killed))
    elapsed = time.monotonic() - killed
    await cluster.restart(leader)
    return elapsed


def _baseline_lines(baseline: pysyncobj.Rate, rates: dict[tuple[str, int], float]) -> None:
    """The Puts/s of 64 and 256 tasks and of the client processes (tasks 0) over PySyncObj's."""
    for (name, tasks), rate in rates.items():
        if name == "puts" and tasks in (64, 256, 0):
            who = f"{tasks} concurrent" if tasks else f"{PROCESSES} client processes"
            print(
                f"puts, {who}: {rate / baseline.writes_per_s:.2f}x PySyncObj's rate "
                f"({baseline.writes_per_s:,.0f} writes/s, {baseline.journal} journal, "
                f"{baseline.window:,} in flight)"
            )



async def _main(baseline: pysyncobj.Rate | None) -> None:
    directory = Path(tempfile.mkdtemp(prefix="dkvb-", dir="/tmp"))
    try:
        async with open_local_cluster(directory, groups=1, replicas=3, cluster="bench") as cluster:
            await cluster.join(cluster.gids[0])
            async with connect(
                cluster.masters, cluster="bench", credentials=cluster.credentials
            ) as kv:
                await kv.put("warm", "up")
                rpc_rate = await _rpc_baseline(cluster, 2.0)
                print(f"baseline: {rpc_rate:,.0f} plain RPC round trips/s (1 caller)")

                async def put(me: int, n: int) -> None:
                    await kv.put(f"bench-{me}-{n % KEYS_PER_TASK}", VALUE)

                async def get(me: int, n: int) -> None:
                    await kv.get(f"bench-{me}-{n % KEYS_PER_TASK}")

                rates: dict[tuple[str, int], float] = {}
                for tasks in (1, 64, 256):
                    for name, op in (("puts", put), ("gets", get)):
                        rate, lat = await _load(tasks, DURATION_S, op)
                        rates[name, tasks] = rate
                        print(
                            f"{name}, {tasks:>3} concurrent: {rate:,.0f} ops/s "
                            f"(median {statistics.median(lat) * 1000:.2f} ms, "
                            f"p99 {_pct(lat, 0.99):.2f} ms); {rate / rpc_rate:.3f}x the RPC baseline"
                        )
                for tasks in (64, 256):
                    ratio = rates["gets", tasks] / rates["puts", tasks]
                    print(f"gets/puts at {tasks} concurrent: {ratio:.2f}x")
                spread = await kv_processes.measure(
                    cluster, "bench", DURATION_S, processes=PROCESSES, tasks=64
                )
                for name, figures in spread.items():
                    rates[name, 0] = figures.rate  # 0 tasks: the row of the client processes
                    print(figures.line(name, PROCESSES, 64))
                ratio = rates["gets", 0] / rates["puts", 0]
                print(f"gets/puts, {PROCESSES} client processes: {ratio:.2f}x")
                if baseline is not None:
                    _baseline_lines(baseline, rates)
                times = []
                for _ in range(FAILOVERS):
                    elapsed = await _failover(cluster, kv)
                    if elapsed is not None:
                        times.append(elapsed)
                        print(f"leader SIGKILLed: writes served again after {elapsed * 1000:.0f} ms")
                if times:
                    print(f"failover: max {max(times) * 1000:.0f} ms over {len(times)} kills")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run() -> None:
    print(f"(cpus: {os.cpu_count()})")
    baseline = pysyncobj.baseline()  # before the cluster starts: the two never share the CPUs
    if baseline is not None:
        print(f"baseline: {baseline.line()}")
    elif not pysyncobj.available():
        print(pysyncobj.SKIP_LINE)
    trio.run(_main, baseline)


if __name__ == "__main__":
    run()
