"""The simulated network's state: packets in flight, by delivery tick, and the partition.

Rules kept here:
- Packets due at the same tick come out in the order they were sent, so a run depends on
  its seed alone. The simulation draws losses, duplicates and delays from its own seeded
  random source; this module holds no randomness.
- A held packet stays queued until released (a scripted schedule's way to delay one).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from ._world import Packet, PacketFilter


class SimNetwork:
    """The queue of packets in flight and which peers can reach each other."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._queue: list[tuple[int, int, Packet]] = []
        self.groups: list[int] | None = None  # peer -> group id; None when connected

    def put(self, packet: Packet, at: int) -> None:
        """Queue `packet` for delivery at tick `at`."""
        heapq.heappush(self._queue, (at, next(self._order), packet))

    def pop_due(self, tick: int) -> Packet | None:
        """The next packet due at or before `tick`, or None."""
        if self._queue and self._queue[0][0] <= tick:
            return heapq.heappop(self._queue)[2]
        return None

    def connected(self, a: int, b: int) -> bool:
        return a == b or self.groups is None or self.groups[a] == self.groups[b]

    def partition(self, groups: Iterable[Iterable[int]] | None, peer_count: int) -> None:
        """Split the peers into `groups` (a peer in none is cut off alone), or heal on None."""
        if groups is None:
            self.groups = None
            return
        assignment = [-1] * peer_count
        for gid, group in enumerate(groups):
            for index in group:
                assignment[index] = gid
        self.groups = assignment

    # ---- acting on queued packets (scripted schedules) --------------------------------------

    def packets(self, where: PacketFilter | None = None) -> list[Packet]:
        """Queued packets matching `where`, in delivery order."""
        items = sorted(self._queue, key=lambda item: (item[0], item[1]))
        return [p for _, _, p in items if where is None or where(p)]

    def hold(self, where: PacketFilter) -> int:
        found = self.packets(where)
        for packet in found:
            packet.held = True
        return len(found)

    def release(self, where: PacketFilter) -> int:
        found = self.packets(where)
        for packet in found:
            packet.held = False
        return len(found)

    def drop(self, where: PacketFilter) -> int:
        before = len(self._queue)
        self._queue = [item for item in self._queue if not where(item[2])]
        heapq.heapify(self._queue)
        return before - len(self._queue)

    def take(self, where: PacketFilter) -> list[Packet]:
        """Remove and return the queued packets matching `where`, in delivery order."""
        found = self.packets(where)
        ids = {id(p) for p in found}
        self._queue = [item for item in self._queue if id(item[2]) not in ids]
        heapq.heapify(self._queue)
        return found
