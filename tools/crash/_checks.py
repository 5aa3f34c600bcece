"""The crash session's end checks, run on the healed cluster and the recorded history.

Rules it keeps:
- Every group serves again: a Get through every group (each owning at least one shard, moved
  there if the nemesis left it none) within the final-read timeout.
- Every acknowledged write is readable: a final Get of every key, recorded in the history, so
  the linearizability check compares it with every write acknowledged before it.
- No server dead that should be alive: every process is running and answers ``rsm.status``
  as intact and serving.
- Disk use is bounded by the live data: each replica's directory stays below
  `DISK_LIVE_FACTOR` times its group's live data plus `DISK_SLACK_BYTES`, once compaction
  had `DISK_SETTLE_S` to catch up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from diskv_trio.client import Client
from diskv_trio.cluster import LocalCluster
from diskv_trio.net import RpcRemoteError, RpcUnavailable
from diskv_trio.shardmaster import Config
from diskv_trio.testing.linearizability import HistoryRecorder

from ._events import Timeline
from ._workload import FINAL_READ_TIMEOUT_S, WorkloadStats, probe_key, recorded_op

DISK_LIVE_FACTOR = 8
"""A replica keeps a snapshot (live data, duplicate table, configs) and a journal at most
about the snapshot's size since it; a factor of 8 leaves room for a torn segment copied
aside and for Paxos instances not yet forgotten."""

DISK_SLACK_BYTES = 1024 * 1024
"""Per-replica allowance independent of the data: identity file, configs, duplicate table,
segment headers, and the records of the last instants before the final compaction."""

DISK_SETTLE_S = 20.0
"""Time given to idle compaction before disk use is judged."""

CONFIG_QUERY_TIMEOUT_S = 30.0
"""The shardmasters must answer a query within this long after recovery."""


@dataclass
class DiskFigures:
    """Bytes per server directory and the bound each was held to."""

    used: dict[str, int] = field(default_factory=dict)
    bound: dict[str, int] = field(default_factory=dict)

    def worst(self) -> tuple[str, float]:
        name = max(self.used, key=lambda n: self.used[n] / self.bound[n])
        return name, self.used[name] / self.bound[name]


async def latest_config(cluster: LocalCluster, timeline: Timeline) -> Config | None:
    with trio.move_on_after(CONFIG_QUERY_TIMEOUT_S):
        return await cluster.shardmaster_clerk().query(-1)
    timeline.problem(f"the shardmasters did not answer a query within {CONFIG_QUERY_TIMEOUT_S:g} s")
    return None


async def give_every_group_a_shard(cluster: LocalCluster, timeline: Timeline) -> None:
    """Move a shard to every group the moves left without one, so every group can be probed."""
    config = await latest_config(cluster, timeline)
    if config is None:
        return
    shards = list(config.shards)
    for gid in cluster.gids:
        if gid in shards:
            continue
        richest = max(set(shards), key=shards.count)
        shard = shards.index(richest)
        with trio.move_on_after(CONFIG_QUERY_TIMEOUT_S) as scope:
            await cluster.shardmaster_clerk().move(shard, gid)
        if scope.cancelled_caught:
            timeline.problem(f"moving shard {shard} to group {gid} in recovery timed out")
            return
        shards[shard] = gid
        timeline.note(f"recovery: moved shard {shard} to group {gid}, which had none")


async def probe_every_group(
    cluster: LocalCluster,
    kv: Client,
    recorder: HistoryRecorder,
    client_id: int,
    stats: WorkloadStats,
    timeline: Timeline,
) -> None:
    """A recorded Get through every group, each within the final-read timeout."""
    config = await latest_config(cluster, timeline)
    if config is None:
        return

    async def probe(gid: int) -> None:
        shard = config.shards.index(gid)
        if await recorded_op(
            kv,
            recorder,
            client_id,
            "get",
            probe_key(shard, config.sharding),
            None,
            FINAL_READ_TIMEOUT_S,
            stats,
        ):
            timeline.note(f"recovery: group {gid} served a Get")
        else:
            timeline.problem(
                f"group {gid} served no Get within {FINAL_READ_TIMEOUT_S:g} s of recovery"
            )

    async with trio.open_nursery() as nursery:
        for gid in cluster.gids:
            if gid in config.shards:
                nursery.start_soon(probe, gid)
            else:
                timeline.problem(f"group {gid} owns no shard after recovery")


async def final_reads(
    kv: Client,
    recorder: HistoryRecorder,
    client_id: int,
    keys: list[str],
    stats: WorkloadStats,
    timeline: Timeline,
) -> dict[str, str]:
    """A recorded Get of every key, all at once; returns the values read of the keys present
    (a timeout is a problem)."""
    values: dict[str, str] = {}

    async def read(key: str) -> None:
        token = recorder.record_call(client_id, "get", key)
        with trio.move_on_after(FINAL_READ_TIMEOUT_S):
            found = await kv.get(key)
            if found is not None:
                values[key] = found.decode()
            recorder.record_return(token, None if found is None else found.decode())
            stats.ok["get"] += 1
            return
        recorder.record_unknown(token)
        stats.unknown["get"] += 1
        timeline.problem(f"final Get of {key!r} did not return within {FINAL_READ_TIMEOUT_S:g} s")

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(read, key)
    return values


async def check_servers(
    cluster: LocalCluster, timeline: Timeline
) -> tuple[dict[str, int], dict[str, Any]]:
    """Every server process runs and answers rsm.status as intact and serving.

    Returns each answering server's applied instance (how far behind its group it is) and
    every status answer (kept in the run directory for a post-mortem).
    """
    applied: dict[str, int] = {}
    statuses: dict[str, Any] = {}
    for name in cluster.servers:
        if not cluster.is_running(name):
            timeline.problem(f"{name} is not running at the end")
            continue
        try:
            status = await cluster.status(name)
        except (RpcUnavailable, RpcRemoteError) as exc:
            timeline.problem(f"{name} does not answer rsm.status at the end: {exc}")
            continue
        statuses[name] = status
        if not status.get("serving") or status.get("state", "intact") != "intact":
            timeline.problem(f"{name} is not serving at the end: {status.get('state')}")
        if isinstance(status.get("applied"), int):
            applied[name] = status["applied"]
    return applied, statuses


def live_bytes_by_group(config: Config, values: dict[str, str]) -> dict[int, int]:
    """Bytes of keys and values each group owns in `config`."""
    live: dict[int, int] = {}
    for key, value in values.items():
        gid = config.shards[config.shard_of(key.encode())]
        live[gid] = live.get(gid, 0) + len(key.encode()) + len(value.encode())
    return live


async def check_disk(
    cluster: LocalCluster, config: Config | None, values: dict[str, str], timeline: Timeline
) -> DiskFigures:
    """Each server's directory below its bound, once idle compaction had time to run."""
    live = live_bytes_by_group(config, values) if config is not None else {}
    figures = DiskFigures()
    for name, spec in cluster.servers.items():
        group_live = live.get(spec.gid, 0) if spec.role == "shardkv" else 0
        figures.bound[name] = DISK_LIVE_FACTOR * group_live + DISK_SLACK_BYTES
    with trio.move_on_after(DISK_SETTLE_S):
        while True:
            figures.used = {name: cluster.disk_bytes([name]) for name in cluster.servers}
            if all(figures.used[n] <= figures.bound[n] for n in cluster.servers):
                return figures
            await trio.sleep(1.0)
    for name in cluster.servers:
        if figures.used[name] > figures.bound[name]:
            timeline.problem(
                f"{name} uses {figures.used[name]:,} bytes on disk, over its bound of "
                f"{figures.bound[name]:,} ({DISK_LIVE_FACTOR} x live data + {DISK_SLACK_BYTES:,})"
            )
    return figures
