"""Faults on the network: partitions, isolated machines, slow links, lossy links.

Rules kept here:
- One network fault at a time: each heals what it did (a partition, or every link back to
  healthy) when its hold ends, and a second would undo the first's.
- Machines are the servers and the clients (and the operator), so a partition can cut a
  client off its group as well as a replica off its peers.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from ._cluster import SimCluster
from ._network import LinkFaults

HOLD_S = (0.5, 6.0)
"""How long a partition or a bad link lasts."""


class NetworkFaults:
    """The network faults of the nemesis; each returns False when another is under way."""

    def __init__(self, cluster: SimCluster, client_hosts: list[str]) -> None:
        self._cluster = cluster
        self._network = cluster.network
        self._machines = [*cluster.servers, *client_hosts]
        self._busy = False

    async def _hold(
        self, rng: random.Random, until: float, apply: Callable[[], None], heal: Callable[[], None]
    ) -> bool:
        if self._busy:
            return False
        self._busy = True
        try:
            apply()
            with trio.move_on_at(until):
                await trio.sleep(rng.uniform(*HOLD_S))
        finally:
            heal()
            self._busy = False
        return True

    async def partition(self, rng: random.Random, until: float) -> bool:
        side = {name for name in self._machines if rng.random() < 0.5}
        network = self._network
        return await self._hold(rng, until, lambda: network.partition(side), network.heal_partition)

    async def isolate(self, rng: random.Random, until: float) -> bool:
        alone = rng.choice(self._machines)
        network = self._network
        return await self._hold(
            rng, until, lambda: network.partition({alone}), network.heal_partition
        )

    def _set_links(self, hosts: list[str], faults: LinkFaults) -> None:
        for host in hosts:
            for other in self._machines:
                if other != host:
                    self._network.set_link(host, other, faults)
                    self._network.set_link(other, host, faults)

    async def slow_links(self, rng: random.Random, until: float) -> bool:
        host = rng.choice(self._machines)
        faults = LinkFaults(delay_s=rng.uniform(0.01, 0.3), jitter_s=rng.uniform(0.0, 0.1))
        return await self._hold(
            rng, until, lambda: self._set_links([host], faults), self._network.heal_links
        )

    async def lossy_links(self, rng: random.Random, until: float) -> bool:
        faults = LinkFaults(
            delay_s=rng.uniform(0.0005, 0.01),
            jitter_s=rng.uniform(0.0, 0.02),
            loss=rng.uniform(0.0, 0.2),
            duplication=rng.uniform(0.0, 0.2),
            reordering=rng.uniform(0.0, 0.3),
        )
        hosts = self._machines if rng.random() < 0.5 else [rng.choice(self._machines)]
        return await self._hold(
            rng, until, lambda: self._set_links(hosts, faults), self._network.heal_links
        )
