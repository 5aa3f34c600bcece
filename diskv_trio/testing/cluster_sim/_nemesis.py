"""The nemesis: seeded faults during the fault phase, each applied, held a while, healed.

Rules kept here:
- The faults are those of `_server_faults` (crashes, power losses, lost disks, slow disks),
  `_network_faults` (partitions, isolation, slow and lossy links) and the configuration's:
  a shard moved to another group, a group that leaves and joins again.
- `actors` run at once, each with its own seeded source, each picking kinds by the seed's
  weights; a fault with no fitting target now is skipped (not counted).
- By the end of the fault phase every fault has healed itself; `heal_all` then puts right
  whatever is left (partitions, links, slow disks, servers down, groups that left).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable

import trio

from diskv_trio.shardmaster import ShardmasterClerk, ShardmasterError

from ._cluster import SimCluster
from ._disk import FAST_DISK_S
from ._network_faults import NetworkFaults
from ._params import SimParams
from ._server_faults import ServerFaults

MOVE_TIMEOUT_S = 10.0
"""A configuration change not done in this long is abandoned (it may still happen)."""

REJOIN_TIMEOUT_S = 60.0
"""After healing, a group that left must be joined again within this long."""

AWAY_S = (1.0, 8.0)
"""How long a group that left stays away before it joins again."""

Fault = Callable[[random.Random, float], Awaitable[bool]]


class Nemesis:
    """Applies `params`' faults to `cluster` (see the module docstring).

    Args:
        client_hosts: the machines of the clients and the operator (partitions cut them too).
        operator: the shardmaster clerk of the operator (moves, leaves, joins).
    """

    def __init__(
        self,
        cluster: SimCluster,
        params: SimParams,
        rng: random.Random,
        operator: ShardmasterClerk,
        client_hosts: list[str],
    ) -> None:
        self._cluster = cluster
        self._params = params
        self._seeds = [rng.getrandbits(64) for _ in range(params.fault_actors)]
        self._operator = operator
        self._away: set[int] = set()
        self.applied: Counter[str] = Counter()
        servers = ServerFaults(cluster)
        network = NetworkFaults(cluster, client_hosts)
        kinds: dict[str, Fault] = {
            "crash": servers.crash,
            "power_loss": servers.power_loss,
            "lose_disk": servers.lose_disk,
            "lose_disk_twice": servers.lose_disk_twice,
            "slow_disk": servers.slow_disk,
            "partition": network.partition,
            "isolate": network.isolate,
            "slow_links": network.slow_links,
            "lossy_links": network.lossy_links,
            "move": self._move,
            "leave_join": self._leave_join,
        }
        chosen = [(kind, weight) for kind, weight in params.weights if weight > 0]
        self._kinds = [(kind, kinds[kind]) for kind, _ in chosen]
        self._weights = [weight for _, weight in chosen]

    async def run(self, until: float) -> None:
        """Apply faults until simulated time `until`; everything is healed by then."""
        async with trio.open_nursery() as nursery:
            for seed in self._seeds:
                nursery.start_soon(self._actor, random.Random(seed), until)

    async def _actor(self, rng: random.Random, until: float) -> None:
        if not self._kinds:  # a calm run
            await trio.sleep_until(until)
            return
        while trio.current_time() < until:
            kind, fault = rng.choices(self._kinds, self._weights)[0]
            self._cluster.trace.event("fault", kind)
            if await fault(rng, until):
                self.applied[kind] += 1
            with trio.move_on_at(until):
                await trio.sleep(rng.uniform(0.05, self._params.fault_gap_s_max))

    async def heal_all(self, problems: list[str]) -> None:
        """Heal the network and the disks, restart every server that is down, bring back
        every group that left (a liveness problem if that takes too long)."""
        cluster = self._cluster
        cluster.network.heal_partition()
        cluster.network.heal_links()
        for server in cluster.servers.values():
            server.disk.latency_s = FAST_DISK_S
        for name in cluster.down():
            await cluster.restart(name)
        for gid in sorted(self._away):
            if not await self._change(self._join(gid), REJOIN_TIMEOUT_S):
                problems.append(
                    f"liveness: group {gid} could not join again within {REJOIN_TIMEOUT_S:g} s"
                )
        self._away.clear()

    def _join(self, gid: int) -> Callable[[], Awaitable[None]]:
        addresses = self._cluster.addresses(gid)
        return lambda: self._operator.join(gid, addresses)

    async def _change(self, change: Callable[[], Awaitable[None]], timeout_s: float) -> bool:
        """Run a configuration change; False if refused or not done in time."""
        with trio.move_on_after(timeout_s):
            try:
                await change()
            except ShardmasterError as exc:  # e.g. a move to a group that just left
                self._cluster.trace.event("config-refused", exc.code)
                return False
            return True
        return False

    # ---- configuration ------------------------------------------------------------------

    async def _move(self, rng: random.Random, until: float) -> bool:
        cluster = self._cluster
        shard = rng.randrange(cluster.sharding.count)
        gid = rng.choice([gid for gid in cluster.gids if gid not in self._away] or cluster.gids)
        cluster.trace.event("move", shard, gid)
        return await self._change(lambda: self._operator.move(shard, gid), MOVE_TIMEOUT_S)

    async def _leave_join(self, rng: random.Random, until: float) -> bool:
        present = [gid for gid in self._cluster.gids if gid not in self._away]
        if len(present) < 2:
            return False
        gid = rng.choice(present)
        self._away.add(gid)
        self._cluster.trace.event("leave", gid)
        await self._change(lambda: self._operator.leave(gid), MOVE_TIMEOUT_S)
        with trio.move_on_at(until):
            await trio.sleep(rng.uniform(*AWAY_S))
        if await self._change(self._join(gid), MOVE_TIMEOUT_S):
            self._away.discard(gid)
        return True
