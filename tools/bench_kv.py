"""Client throughput and latency against a local 1-group x 3-replica cluster.

Figures: Put operations per second (100-byte values, journal syncing) with 1 client task
and with 64 concurrent tasks, median and p99 latency; beside them, the baseline of the same
run: plain RPC round trips to one replica (`rsm.status`) over the same sockets.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import trio

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster

DURATION_S = 4.0
VALUE = "v" * 100


async def _rpc_baseline(cluster, seconds: float) -> float:
    address = cluster.servers[cluster.group_servers(cluster.gids[0])[0]].address
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await cluster.pool.call(address, "rsm.status", {}, deadline_s=5)
        count += 1
    return count / seconds


async def _puts(kv, tasks: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(me: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            await kv.put(f"bench-{me}-{n % 50}", VALUE)
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


async def _main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="dkvb-", dir="/tmp"))
    try:
        async with open_local_cluster(directory, groups=1, replicas=3, cluster="bench") as cluster:
            await cluster.join(cluster.gids[0])
            async with connect(cluster.masters, cluster="bench", credentials=cluster.credentials) as kv:
                await kv.put("warm", "up")
                rpc_rate = await _rpc_baseline(cluster, 2.0)
                print(f"baseline: {rpc_rate:,.0f} plain RPC round trips/s (1 caller)")
                for tasks in (1, 64):
                    rate, lat = await _puts(kv, tasks, DURATION_S)
                    print(
                        f"puts, {tasks:>2} concurrent: {rate:,.0f} ops/s "
                        f"(median {statistics.median(lat) * 1000:.2f} ms, p99 {_pct(lat, 0.99):.2f} ms); "
                        f"{rate / rpc_rate:.3f}x the RPC baseline"
                    )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run() -> None:
    print(f"(cpus: {os.cpu_count()})")
    trio.run(_main)


if __name__ == "__main__":
    run()
