"""Figures on a network of namespaces: Put and Get latency, and time to serve again after the
host of the replica a client was using is cut off.

Rules it keeps:
- One group of three replicas and three shardmasters, each on its own host; the client runs
  in this process's namespace, one hop away over the bridge, as an application machine.
- Latency is measured op by op, one op in flight, on a key of the group; with ``tc netem``
  every host's egress and the clients' egress get the same one-way delay, so any two
  machines are that far apart (where netem is missing, those rows say so).
- With this Paxos there is no stable leader: the fail-over figure takes the replica the
  client last got an answer from and takes its host's link down while a client writes
  back to back; the figure is the time from the link going down to the next write answered.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import trio

from diskv_trio.client import Client, connect
from diskv_trio.cluster import LocalCluster
from diskv_trio.net import RpcRemoteError, RpcUnavailable

from ._netns import NETEM_MISSING, HostNetwork, netem_available
from ._netns_cluster import open_netns_cluster

CLUSTER_NAME = "figures"
GID = 100

OPS_PER_ROW = 200
"""Ops per latency row at 0 ms: enough for a stable median and p99 in a few seconds."""

OPS_PER_DELAYED_ROW = 50
"""Ops per row with added delay: each costs several round trips of it."""

DELAYS_MS = (1, 20)
"""One-way delays added with netem between any two machines."""

FAILOVER_TRIALS = 3
"""Hosts cut off in turn (a different replica each time, as the client moves on)."""

OP_TIMEOUT_S = 30.0
"""An op that takes longer means the group did not serve: the figure reports it as such."""

SERVING_WAIT_S = 60.0
"""A rejoined replica must serve again within this long before the next trial."""


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _latencies(kv: Client, kind: str, count: int) -> list[float]:
    samples = []
    for n in range(count):
        started = time.monotonic()
        with trio.fail_after(OP_TIMEOUT_S):
            if kind == "put":
                await kv.put("figure-key", f"value-{n}")
            else:
                await kv.get("figure-key")
        samples.append(time.monotonic() - started)
    return samples


def _row(label: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (
        f"  {label:<26} median {statistics.median(ms):7.2f} ms   p90 {_percentile(ms, 0.9):7.2f} ms"
        f"   p99 {_percentile(ms, 0.99):7.2f} ms   ({len(ms)} ops)"
    )


def _set_delay(network: HostNetwork, delay_ms: int | None) -> None:
    for host in network.hosts:
        if delay_ms is None:
            network.unshape(host.index)
        else:
            network.netem(host.index, "delay", f"{delay_ms}ms")
    if delay_ms is None:
        network.unshape(-1)
    else:
        network.netem_bridge("delay", f"{delay_ms}ms")


async def latency_rows(kv: Client, network: HostNetwork) -> list[str]:
    rows = []
    await _latencies(kv, "put", 20)  # warm up: connections, configuration, sessions
    for kind in ("put", "get"):
        rows.append(
            _row(f"{kind.capitalize()}, 0 ms added", await _latencies(kv, kind, OPS_PER_ROW))
        )
    if not netem_available():
        rows.append(f"  1 ms and 20 ms one-way delay: not measured here ({NETEM_MISSING})")
        return rows
    for delay_ms in DELAYS_MS:
        await trio.to_thread.run_sync(_set_delay, network, delay_ms)
        try:
            for kind in ("put", "get"):
                samples = await _latencies(kv, kind, OPS_PER_DELAYED_ROW)
                rows.append(
                    _row(f"{kind.capitalize()}, {delay_ms} ms one way", samples)
                    + f"   = {statistics.median(samples) * 1000 / delay_ms:.1f} x the delay"
                )
        finally:
            await trio.to_thread.run_sync(_set_delay, network, None)
    return rows


def _replica_in_use(kv: Client, cluster: LocalCluster) -> str:
    """The replica of `GID` that last answered this client (the client's preferred index)."""
    index = kv._preferred.get(GID, 0)  # the client keeps no public notion of it: a figure only
    return cluster.group_servers(GID)[index]


async def _wait_serving(cluster: LocalCluster, name: str) -> None:
    with trio.fail_after(SERVING_WAIT_S):
        while True:
            with trio.move_on_after(2.0):
                try:
                    status = await cluster.status(name)
                    if status.get("serving"):
                        return
                except (RpcUnavailable, RpcRemoteError):  # still cut off or recovering
                    pass
            await trio.sleep(0.2)


async def failover_rows(kv: Client, cluster: LocalCluster, network: HostNetwork) -> list[str]:
    rows = []
    for trial in range(FAILOVER_TRIALS):
        await kv.put("failover-key", f"before-{trial}")
        name = _replica_in_use(kv, cluster)
        index = network.host_of(cluster.spec(name).address.rsplit(":", 1)[0]).index
        await trio.to_thread.run_sync(network.isolate, index)
        cut_at = time.monotonic()
        try:
            with trio.fail_after(OP_TIMEOUT_S):
                await kv.put("failover-key", f"after-{trial}")
            served_s = time.monotonic() - cut_at
            moved_to = _replica_in_use(kv, cluster)
        finally:
            await trio.to_thread.run_sync(network.rejoin, index)
        rows.append(
            f"  trial {trial + 1}: {name}'s host cut off; the next write answered after "
            f"{served_s:.2f} s (by {moved_to})"
        )
        await _wait_serving(cluster, name)
    return rows


async def print_figures() -> None:
    """Start the cluster on namespaces, print each figure as it is measured, remove everything."""
    with tempfile.TemporaryDirectory(prefix="dkv-figures-", dir="/tmp") as directory:
        async with open_netns_cluster(
            Path(directory) / "cluster", groups=1, replicas=3, cluster=CLUSTER_NAME
        ) as (cluster, network):
            await cluster.join(GID)
            async with connect(
                cluster.masters, cluster=CLUSTER_NAME, credentials=cluster.credentials
            ) as kv:
                print(
                    "Latency, one op in flight, client one hop from 3 replicas (each its own namespace, TCP):"
                )
                for row in await latency_rows(kv, network):
                    print(row, flush=True)
                print(
                    "Time to serve again after the host of the replica in use is cut off (link down):"
                )
                for row in await failover_rows(kv, cluster, network):
                    print(row, flush=True)
