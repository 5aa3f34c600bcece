"""Restart and recovery times, and disk use, of shardkv replicas run as real processes.

Figures, each beside a baseline of the same run (a replica started on an empty bootstrap
directory, from process start to serving):
- restart to serving on a journal of 100,000 small ops, as the compaction policy leaves it
  (snapshot plus tail) and as a journal never compacted (worst case: every op replayed);
- restart to serving on a snapshot of 10 MB and of 100 MB of values;
- a replica that lost its disk: time from process start to voting again and to serving,
  with 10 MB and with 100 MB of state in its group;
- disk bytes per live byte after a write-heavy run and after idling.

Journals for the single-replica restarts are written by an in-process node (ops submitted to
its state machine directly, so no client round trips), then a server process is started on
them. Nothing here asserts: the figures are for people to read.
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

import diskv_trio.rsm._rsm as rsm_module
from diskv_trio.client import connect
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.net import RpcRemoteError, RpcUnavailable
from diskv_trio.rsm import NodeSettings, ReplicatedStateMachine
from diskv_trio.shardkv import ShardKVState, shardkv_node

CLUSTER = "bench"
GID = 100
POLL_S = 0.01
SERVE_TIMEOUT_S = 20.0
"""A restart or recovery that does not serve within this long is reported as never."""

JOURNAL_OPS = 100_000
SMALL_VALUE = "v" * 16
SMALL_KEYS = 10_000
GENERATOR_TASKS = 32
"""Concurrent submitters while writing the 100,000-op journal: batches of about this many."""

BIG_VALUE_BYTES = 1024 * 1024
SNAPSHOT_MBS = (10, 100)

HEAVY_KEYS = 1000
HEAVY_VALUE_BYTES = 1024
HEAVY_PUTS = 10_000
HEAVY_TASKS = 64
IDLE_S = 3.0

PROBE_INTERVAL_S = 0.01

BUDGET_S = 170.0
"""Larger measurements are skipped once the bench has run this long (target: 3 minutes)."""


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def left(self) -> float:
        return BUDGET_S - (time.monotonic() - self.started)


async def _status(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    try:
        return await cluster.pool.call(cluster.spec(name).address, "rsm.status", {}, deadline_s=5)
    except (RpcUnavailable, RpcRemoteError):
        return None


async def _start_and_time(cluster: LocalCluster, name: str) -> dict[str, float | None]:
    """Start (or restart) `name`; seconds from the process start to answering, voting and
    serving (None: not within SERVE_TIMEOUT_S)."""
    times: dict[str, float | None] = {"answering": None, "voting": None, "serving": None}
    started = time.monotonic()
    await cluster.start(name, wait=False)
    with trio.move_on_after(SERVE_TIMEOUT_S):
        while True:
            status = await _status(cluster, name)
            now = time.monotonic() - started
            if status is not None:
                times["answering"] = times["answering"] or now
                if times["voting"] is None and not status["paxos"]["recovering"]:
                    times["voting"] = now
                if status["serving"] and status["state"] == "intact":
                    times["serving"] = now
                    return times
            await trio.sleep(POLL_S)
    return times


def _fmt(seconds: float | None, baseline: float) -> str:
    if seconds is None:
        return f"never (not within {SERVE_TIMEOUT_S:g} s)"
    return f"{seconds:.2f} s ({seconds / baseline:.1f}x baseline)"


def _new_cluster_dir(root: Path, label: str) -> Path:
    path = root / label
    path.mkdir()
    return path


async def _single_replica(
    root: Path, label: str, fill: Callable[[ReplicatedStateMachine], Awaitable[None]] | None
) -> dict[str, float | None]:
    """A one-replica group: written in-process by `fill` (if given), then timed as a process."""
    async with open_local_cluster(
        _new_cluster_dir(root, label), groups=0, masters=1, cluster=CLUSTER, start=False
    ) as cluster:
        (name,) = cluster.add_group(GID, 1)
        await cluster.start("master-0")
        if fill is None:
            return await _start_and_time(cluster, name)
        spec = cluster.spec(name)
        settings = NodeSettings(
            cluster=CLUSTER,
            role="shardkv",
            group=GID,
            me=0,
            peers=tuple(spec.peers),
            directory=spec.directory,
            bootstrap=True,
        )
        node = shardkv_node(settings, cluster.masters)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await node.serving.wait()
            await cluster.join(GID)
            assert node.rsm is not None
            rsm = node.rsm
            while True:
                state = rsm.machine
                assert isinstance(state, ShardKVState)
                if state.config.num >= 1 and not state.waiting:
                    break
                await trio.sleep(0.02)
            fill_started = time.monotonic()
            await fill(rsm)
            fill_s = time.monotonic() - fill_started
            nursery.cancel_scope.cancel()
        spec.starts = 1
        journal_bytes = cluster.disk_bytes([name])
        times = await _start_and_time(cluster, name)
        times["disk_mb"] = journal_bytes / 1e6
        times["fill_s"] = fill_s
        return times


def _small_ops(rsm: ReplicatedStateMachine) -> Awaitable[None]:
    async def fill() -> None:
        async def task(t: int) -> None:
            client = f"gen-{t}"
            for seq, i in enumerate(range(t, JOURNAL_OPS, GENERATOR_TASKS), start=1):
                op = {"op": "put", "key": f"k{i % SMALL_KEYS}", "value": SMALL_VALUE}
                await rsm.submit(op | {"client": client, "seq": seq})

        async with trio.open_nursery() as nursery:
            for t in range(GENERATOR_TASKS):
                nursery.start_soon(task, t)

    return fill()


def _big_values(megabytes: int) -> Callable[[ReplicatedStateMachine], Awaitable[None]]:
    async def fill(rsm: ReplicatedStateMachine) -> None:
        value = "x" * BIG_VALUE_BYTES
        for i in range(megabytes):
            op = {"op": "put", "key": f"big{i}", "value": value[:-8] + f"{i:08d}"}
            await rsm.submit(op | {"client": "gen", "seq": i + 1})
        await rsm.compact()

    return fill


async def _no_compaction_small_ops(rsm: ReplicatedStateMachine) -> None:
    saved = rsm_module.COMPACTION_CHECK_S
    rsm_module.COMPACTION_CHECK_S = 1e9  # the loop's current sleep still ends once
    try:
        await _small_ops(rsm)
    finally:
        rsm_module.COMPACTION_CHECK_S = saved


async def _group_figures(root: Path, baseline: float, clock: _Clock) -> None:
    async with open_local_cluster(
        _new_cluster_dir(root, "group"), groups=1, replicas=3, masters=1, cluster=CLUSTER
    ) as cluster:
        names = cluster.group_servers(GID)
        await cluster.join(GID)
        async with connect(cluster.masters, cluster=CLUSTER, credentials=cluster.credentials) as kv:
            value = "h" * HEAVY_VALUE_BYTES
            idle_probe = _LatencyProbe(cluster, names[0])
            with trio.move_on_after(1.0):
                await idle_probe.run()
            print(
                f"slowest status reply of an idle replica over 1 s: "
                f"{idle_probe.worst_s * 1000:.1f} ms (latency baseline)"
            )

            async def heavy(t: int) -> None:
                for i in range(t, HEAVY_PUTS, HEAVY_TASKS):
                    await kv.put(f"heavy{i % HEAVY_KEYS}", value)

            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                for t in range(HEAVY_TASKS):
                    nursery.start_soon(heavy, t)
            elapsed = time.monotonic() - started
            live = await _live_bytes(cluster, names)
            right_after = cluster.disk_bytes(names) / 3
            await trio.sleep(IDLE_S)
            idle = cluster.disk_bytes(names) / 3
            print(
                f"write-heavy run: {HEAVY_PUTS:,} puts of {HEAVY_VALUE_BYTES} B over "
                f"{HEAVY_KEYS} keys in {elapsed:.1f} s; live {live / 1e6:.2f} MB per replica"
            )
            print(
                f"  disk bytes per live byte: {right_after / live:.2f} right after, "
                f"{idle / live:.2f} after {IDLE_S:g} s idle"
            )
            written = 0
            big = "b" * BIG_VALUE_BYTES
            for megabytes in SNAPSHOT_MBS:
                if clock.left() < 40 and megabytes > SNAPSHOT_MBS[0]:
                    print(f"disk loss with {megabytes} MB: skipped (time budget)")
                    continue
                started = time.monotonic()

                async def grow(t: int, first: int = written, upto: int = megabytes) -> None:
                    for i in range(first + t, upto, 4):
                        await kv.put(f"big{i}", big)

                probe = _LatencyProbe(cluster, names[0])
                async with trio.open_nursery() as probing:
                    probing.start_soon(probe.run)
                    async with trio.open_nursery() as nursery:
                        for t in range(4):
                            nursery.start_soon(grow, t)
                    written = megabytes
                    fill_s = time.monotonic() - started
                    live = await _live_bytes(cluster, names)
                    growing_worst, probe.worst_s = probe.worst_s, 0.0
                    await cluster.kill(names[2], lose_disk=True)
                    times = await _start_and_time(cluster, names[2])
                    probing.cancel_scope.cancel()
                print(
                    f"disk loss, {live / 1e6:.0f} MB of state (written in {fill_s:.1f} s): "
                    f"votes {_fmt(times['voting'], baseline)}, serves {_fmt(times['serving'], baseline)}"
                )
                print(
                    f"  slowest status reply of an intact replica: {growing_worst * 1000:.0f} ms "
                    f"while the state grew, {probe.worst_s * 1000:.0f} ms during the recovery"
                )
                if times["serving"] is None:
                    tail = (cluster.spec(names[0]).log_path).read_text().splitlines()[-3:]
                    print("  an intact peer's log ends: " + " | ".join(t[:160] for t in tail))
                    break


class _LatencyProbe:
    """Largest round trip of `rsm.status` to one replica while it runs: a replica whose
    Trio thread is blocked (e.g. encoding a large snapshot) answers late."""

    def __init__(self, cluster: LocalCluster, name: str) -> None:
        self._cluster = cluster
        self._name = name
        self.worst_s = 0.0

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            await _status(self._cluster, self._name)
            self.worst_s = max(self.worst_s, time.monotonic() - started)
            await trio.sleep(PROBE_INTERVAL_S)


async def _live_bytes(cluster: LocalCluster, names: list[str]) -> int:
    sizes = []
    for name in names:
        status = await _status(cluster, name)
        if status is not None:
            sizes.append(status["machine"]["live_bytes"])
    return max(sizes)


async def _main() -> None:
    clock = _Clock()
    root = Path(tempfile.mkdtemp(prefix="dkvr-", dir="/tmp"))
    try:
        empties = [await _single_replica(root, f"empty{i}", None) for i in range(3)]
        baseline = statistics.median(t["serving"] or 0.0 for t in empties)
        print(f"baseline: empty bootstrap directory, process start to serving: {baseline:.2f} s")

        times = await _single_replica(root, "small", _small_ops)
        print(
            f"restart on {JOURNAL_OPS:,} ops as compacted ({times['disk_mb']:.1f} MB on disk, "
            f"written in-process in {times['fill_s']:.1f} s): "
            f"{_fmt(times['serving'], baseline)}"
        )
        times = await _single_replica(root, "small-raw", _no_compaction_small_ops)
        print(
            f"restart on {JOURNAL_OPS:,} ops never compacted ({times['disk_mb']:.1f} MB journal, "
            f"written in {times['fill_s']:.1f} s): "
            f"{_fmt(times['serving'], baseline)}"
        )
        for megabytes in SNAPSHOT_MBS:
            if clock.left() < 90 and megabytes > SNAPSHOT_MBS[0]:
                print(f"restart on a {megabytes} MB snapshot: skipped (time budget)")
                continue
            times = await _single_replica(root, f"snap{megabytes}", _big_values(megabytes))
            print(
                f"restart on a {megabytes} MB snapshot ({times['disk_mb']:.0f} MB on disk, "
                f"written in {times['fill_s']:.1f} s): "
                f"{_fmt(times['serving'], baseline)}"
            )
        await _group_figures(root, baseline, clock)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run() -> None:
    print(f"(cpus: {os.cpu_count()})")
    trio.run(_main)


if __name__ == "__main__":
    run()
