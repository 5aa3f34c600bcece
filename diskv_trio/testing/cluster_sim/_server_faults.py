"""Faults on servers: crashes, power losses, lost disks, slow disks.

Rules kept here:
- A crash is a power cut of one machine (unsynced writes partly lost); `power_loss` cuts a
  whole group at once. Crashes may take a majority of a group down: the group then stalls,
  and must stay safe and come back.
- A disk is lost (emptied, or its journal damaged so that it must be treated as lost) only when every other replica of its group serves intact and no other disk
  loss of the group is under way: losing a second disk before the first one recovered is
  not a fault this store claims to survive (it needs both other replicas to rejoin). Half of
  the lost disks crash again during their recovery, which must resume after the restart.
- `lose_disk_twice` loses one replica's disk, waits until it has recovered, then another's.
- A server held down by one actor is left alone by the others.
"""

from __future__ import annotations

import random

import trio

from ._checks import wait_until
from ._cluster import SimCluster
from ._disk import FAST_DISK_S

DOWN_S = (0.2, 4.0)
"""How long a crashed server stays down."""

DISK_LOST_DOWN_S = (0.2, 2.0)
"""How long a server whose disk was lost stays down before it restarts on an empty disk."""

RECOVERY_CRASH_S = (0.0, 1.0)
"""When a recovering server crashes again, after its restart."""

RECOVERY_WAIT_S = 30.0
"""How long a disk-loss fault waits for its server to recover."""

SLOW_DISK_S = (0.005, 0.05)
"""Latency of one blocking disk call on a slow disk."""

SLOW_DISK_HOLD_S = (0.5, 6.0)
"""How long a disk stays slow."""


class ServerFaults:
    """The server faults of the nemesis; each returns False when no target fits now."""

    def __init__(self, cluster: SimCluster) -> None:
        self._cluster = cluster
        self._held: set[str] = set()  # servers an actor is holding down
        self._disk_loss_groups: set[int] = set()

    def _free(self, name: str) -> bool:
        return name not in self._held and self._cluster.servers[name].running

    async def _down_for(
        self,
        names: list[str],
        rng: random.Random,
        span: tuple[float, float],
        until: float,
        *,
        lose_disk: bool = False,
        corrupt: bool = False,
    ) -> None:
        self._held.update(names)
        try:
            for name in names:
                await self._cluster.crash(name, lose_disk=lose_disk, corrupt=corrupt)
            with trio.move_on_at(until):
                await trio.sleep(rng.uniform(*span))
            for name in names:
                await self._cluster.restart(name)
        finally:
            self._held.difference_update(names)

    async def crash(self, rng: random.Random, until: float) -> bool:
        names = [name for name in self._cluster.servers if self._free(name)]
        if not names:
            return False
        await self._down_for([rng.choice(names)], rng, DOWN_S, until)
        return True

    async def power_loss(self, rng: random.Random, until: float) -> bool:
        gid = rng.choice([0, *self._cluster.gids])
        names = [s.spec.name for s in self._cluster.group(gid) if self._free(s.spec.name)]
        if not names:
            return False
        await self._down_for(names, rng, DOWN_S, until)
        return True

    def _disk_loss_target(self, rng: random.Random, gid: int | None = None) -> str | None:
        names = [
            name
            for name, server in self._cluster.servers.items()
            if (gid is None or server.spec.group == gid)
            and server.spec.group not in self._disk_loss_groups
            and all(
                s.serving and s.spec.name not in self._held
                for s in self._cluster.group(server.spec.group)
            )
        ]
        return rng.choice(names) if names else None

    async def _lose_one_disk(self, name: str, rng: random.Random, until: float) -> bool:
        """Lose `name`'s disk (a third of the time: damage its journal, which it must then
        treat as lost), restart it (crash it again while it recovers, half the time); True
        once it serves again, intact."""
        corrupt = rng.random() < 1 / 3
        await self._down_for(
            [name], rng, DISK_LOST_DOWN_S, until, lose_disk=not corrupt, corrupt=corrupt
        )
        server = self._cluster.servers[name]
        if rng.random() < 0.5:
            with trio.move_on_at(until):
                await trio.sleep(rng.uniform(*RECOVERY_CRASH_S))
            if server.running and not server.serving and name not in self._held:
                self._cluster.trace.event("crash-while-recovering", name)
                await self._down_for([name], rng, DOWN_S, until)
        with trio.move_on_at(min(until, trio.current_time() + RECOVERY_WAIT_S)):
            await wait_until(lambda: server.serving)
            return True
        return False

    async def lose_disk(self, rng: random.Random, until: float) -> bool:
        name = self._disk_loss_target(rng)
        if name is None:
            return False
        gid = self._cluster.servers[name].spec.group
        self._disk_loss_groups.add(gid)
        try:
            await self._lose_one_disk(name, rng, until)
        finally:
            self._disk_loss_groups.discard(gid)
        return True

    async def lose_disk_twice(self, rng: random.Random, until: float) -> bool:
        first = self._disk_loss_target(rng)
        if first is None:
            return False
        gid = self._cluster.servers[first].spec.group
        self._disk_loss_groups.add(gid)
        try:
            if await self._lose_one_disk(first, rng, until):
                self._disk_loss_groups.discard(gid)
                second = self._disk_loss_target(rng, gid)
                if second is not None:
                    self._disk_loss_groups.add(gid)
                    await self._lose_one_disk(second, rng, until)
        finally:
            self._disk_loss_groups.discard(gid)
        return True

    async def slow_disk(self, rng: random.Random, until: float) -> bool:
        server = self._cluster.servers[rng.choice(list(self._cluster.servers))]
        server.disk.latency_s = SLOW_DISK_S
        self._cluster.trace.event("slow-disk", server.spec.name)
        with trio.move_on_at(until):
            await trio.sleep(rng.uniform(*SLOW_DISK_HOLD_S))
        server.disk.latency_s = FAST_DISK_S
        return True
