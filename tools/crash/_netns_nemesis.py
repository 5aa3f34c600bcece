"""The crash session's nemesis on a network of namespaces: the network faults are the kernel's.

Rules it keeps (beyond `Nemesis`'s budget, hold and heal rules, which it reuses):
- Fault kinds: SIGKILL and restart, with or without disk loss, and SIGSTOP/SIGCONT (as the
  crash session); a *partition* of a server from its group's peers (blackhole routes in both
  namespaces); an *isolation* of a server's host from everyone, clients included (its link
  down); *netem* on a whole group's hosts (delay with jitter, loss, duplication,
  reordering) where the kernel has sch_netem; a *slow* group (tbf rate limit); shard moves.
- The servers' own fault switches (``admin.faults``: cut, deaf, unreliable) are never turned
  on: what breaks the network here is outside the code under test.
- Each session opens with one fault of every kernel kind (in a seeded order), so a short
  session exercises them all; the seeded random choice takes over after that.
- Partitions and isolations break their target (they count against its group's minority
  budget); netem and slow links break nobody, as unreliable links do in the crash session.
"""

from __future__ import annotations

import random
from functools import partial

import trio

from diskv_trio.cluster import LocalCluster

from ._events import Timeline
from ._nemesis import Nemesis
from ._netns import HostNetwork, netem_available

NETEM_ARGUMENTS = ("delay", "8ms", "4ms", "loss", "2%", "duplicate", "2%", "reorder", "20%", "50%")
"""A bad WAN link: 8 ms +- 4 ms one way, 2% lost, 2% duplicated, 20% sent at once out of order."""

SLOW_RATE = "1mbit"
"""A slow link that still carries the workload's small ops, with queueing delay under bursts."""

NET_KIND_WEIGHTS: dict[str, float] = {
    "kill": 3.0,
    "kill-lose-disk": 2.0,
    "pause": 2.0,
    "partition": 2.0,
    "isolate": 1.5,
    "netem": 1.5,
    "slow": 1.0,
    "move": 1.5,
}
"""Relative frequency of each fault kind (netem gets 0 where the kernel has no sch_netem)."""


KERNEL_KINDS = ("partition", "isolate", "netem", "slow")
"""The fault kinds made by the kernel on the network."""


class NetNemesis(Nemesis):
    """`Nemesis` whose network faults are made by the kernel on `network`.

    Args:
        cluster: an open cluster placed on `network` (one host per server).
        rng, timeline: as for `Nemesis`.
        network: the namespaces the servers run in.
        netem: whether ``tc netem`` works here (else that kind is never chosen).
    """

    def __init__(
        self,
        cluster: LocalCluster,
        rng: random.Random,
        timeline: Timeline,
        *,
        network: HostNetwork,
        netem: bool,
    ) -> None:
        super().__init__(cluster, rng, timeline)
        self.network = network
        self.kind_weights = dict(NET_KIND_WEIGHTS)
        if not netem:
            self.kind_weights["netem"] = 0.0
        self.opening_kinds = [kind for kind in KERNEL_KINDS if self.kind_weights[kind] > 0]
        rng.shuffle(self.opening_kinds)
        """Kinds still to apply once each before the random choice takes over."""

    def host_index(self, name: str) -> int:
        return self.network.host_of(self.cluster.spec(name).address.rsplit(":", 1)[0]).index

    async def _net(self, method: str, *args: object) -> None:
        await trio.to_thread.run_sync(partial(getattr(self.network, method), *args))

    async def one_fault(self, rng: random.Random | None = None) -> bool:
        """Apply, hold and heal one random fault; False if no target fits the budget now."""
        rng = rng or self.rng
        if self.opening_kinds:
            kind = self.opening_kinds.pop()
        else:
            kind = rng.choices(list(self.kind_weights), list(self.kind_weights.values()))[0]
        if kind == "move":
            await self._move(rng)
            return True
        if kind in ("netem", "slow"):
            await self._shape_group(kind, rng)
            return True
        target = await self.choose_target(kind, rng)  # reserved as broken
        if target is None:
            return False
        if kind in ("kill", "kill-lose-disk"):
            await self._kill(target, rng, lose_disk=kind == "kill-lose-disk")
        elif kind == "pause":
            await self._pause(target, rng)
        elif kind == "partition":
            await self._partition(target, rng)
        else:
            await self._isolate(target, rng)
        return True

    async def _partition(self, name: str, rng: random.Random) -> None:
        here = self.host_index(name)
        peers = [self.host_index(peer) for peer in self.group_members(name) if peer != name]
        for peer in peers:
            await self._net("block", here, peer)
        self.timeline.fault(
            "partition",
            f"partitioned {name} from its group (blackhole routes)",
            leader=self.broken[name].leader,
        )
        await self._hold(rng)
        for peer in peers:
            await self._net("unblock", here, peer)
        self.timeline.note(f"healed the partition of {name}")
        if await self.wait_serving(name, why="a partition"):
            del self.broken[name]

    async def _isolate(self, name: str, rng: random.Random) -> None:
        index = self.host_index(name)
        await self._net("isolate", index)
        self.timeline.fault(
            "isolate", f"took the link of {name}'s host down", leader=self.broken[name].leader
        )
        await self._hold(rng)
        await self._net("rejoin", index)
        self.timeline.note(f"link of {name}'s host up")
        if await self.wait_serving(name, why="an isolation"):
            del self.broken[name]

    async def _shape_group(self, kind: str, rng: random.Random) -> None:
        gids = sorted({s.gid for s in self.cluster.servers.values() if s.role == "shardkv"})
        gid = rng.choice(gids)
        hosts = [self.host_index(member) for member in self.cluster.group_servers(gid)]
        for index in hosts:
            if kind == "netem":
                await self._net("netem", index, *NETEM_ARGUMENTS)
            else:
                await self._net("rate_limit", index, SLOW_RATE)
        what = " ".join(NETEM_ARGUMENTS) if kind == "netem" else f"rate {SLOW_RATE}"
        self.timeline.fault(kind, f"{kind} on group {gid}'s hosts: {what}")
        await self._hold(rng)
        for index in hosts:
            await self._net("unshape", index)
        self.timeline.note(f"group {gid}'s links clean again")

    async def heal_all(self) -> None:
        """Undo every kernel fault, then heal as `Nemesis` does (resume, restart, wait)."""
        self._ending.set()
        await self._net("heal")
        self.timeline.note("recovery: every link up, no blackhole, no qdisc")
        await super().heal_all()


def net_nemesis_factory(network: HostNetwork) -> partial[NetNemesis]:
    """A `SessionHooks.make_nemesis` for servers on `network`."""
    return partial(NetNemesis, network=network, netem=netem_available())
