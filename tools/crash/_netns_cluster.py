"""A local cluster whose servers each run on their own host of a `HostNetwork`, over TCP.

Rules it keeps:
- One host (network namespace) per server, shardmasters first, in the order the supervisor
  names them; every server listens on `SERVER_PORT` of its host's address, so the addresses
  look like those of a cluster on several machines (``10.231.N.H:7400``).
- A server is started as ``ip netns exec NS python -m diskv_trio ...``; ``ip`` execs the
  server in place, so the supervisor's process handle is the server itself (SIGKILL,
  SIGSTOP and SIGCONT reach it directly). The credentials directory and the data
  directories are shared through the filesystem, as a configuration tool would copy them.
- Leftovers of crashed runs are removed before a network is made; the network is removed
  after every server stopped, however the block exits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from diskv_trio.cluster import LocalCluster, open_local_cluster

from ._netns import Host, HostNetwork, remove_leftovers

SERVER_PORT = 7400
"""Every server's port on its own host (each host has its own address, so one port fits all)."""


class NetnsPlacement:
    """Gives each server the next host of `network` (a `diskv_trio.cluster.Placement`)."""

    def __init__(self, network: HostNetwork) -> None:
        self.network = network
        self._by_name: dict[str, Host] = {}

    def address(self, name: str) -> str:
        if name not in self._by_name:
            if len(self._by_name) >= len(self.network.hosts):
                raise ValueError(
                    f"no host left for {name}: the network has {len(self.network.hosts)}"
                )
            self._by_name[name] = self.network.hosts[len(self._by_name)]
        return f"{self._by_name[name].ip}:{SERVER_PORT}"

    def command(self, address: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.host_at(address).netns, *argv]

    def host_at(self, address: str) -> Host:
        return self.network.host_of(address.rsplit(":", 1)[0])


def hosts_needed(groups: int, replicas: int, masters: int = 3) -> int:
    return masters + groups * replicas


@asynccontextmanager
async def open_netns_cluster(
    data_dir: Path, *, groups: int, replicas: int, **options: Any
) -> AsyncIterator[tuple[LocalCluster, HostNetwork]]:
    """A cluster of one server per namespace; every server and namespace is gone on exit.

    Raises:
        NetnsUnavailableError: the namespaces could not be made.
    """
    await trio.to_thread.run_sync(remove_leftovers)
    network = HostNetwork(hosts_needed(groups, replicas))
    await trio.to_thread.run_sync(network.create)
    try:
        placement = NetnsPlacement(network)
        async with open_local_cluster(
            data_dir, groups=groups, replicas=replicas, placement=placement, **options
        ) as cluster:
            yield cluster, network
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(network.close)
