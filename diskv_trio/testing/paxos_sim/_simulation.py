"""Deterministic simulation of a Paxos group: one seed drives clock, network, disks and faults.

Each simulated peer is a `PaxosCore` with a `SimDisk` (a journal whose unsynced tail is lost
in a crash), driven as a server drives it (`_driver.py`). The network loses, duplicates,
delays (hence reorders) and partitions messages. Peers crash and restart from their disk,
or lose their disk and restart recovering.

Checkers:
- agreement: every decision ever made (a journalled "decided" record, including by peers
  later wiped) is compared with a global record; a second value for an instance fails at once.
- liveness: after the fault phase the network heals and every peer comes back; every
  recovering peer must be voting and learn up to its floor; then (half the seeds) one peer
  stops for good, and every instance ever started must be decided (or forgotten) at every
  live peer, all within a bounded number of ticks.

A failure raises `SimulationFailure` whose message starts with the seed and parameters.
The same harness runs scripted schedules (`manual=True`): nothing random happens, and the
test delivers, holds or drops individual messages. A core built from other parts
(`CoreParts`, e.g. one rule broken on purpose) runs the same way, so the checkers can be
shown to catch it.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterable
from typing import Any

from diskv_trio.paxos import Fate, PaxosCore, restore_state
from diskv_trio.paxos._parts import DEFAULT_PARTS, CoreParts

from ._driver import SimDriver
from ._faults import heal_and_check_liveness, random_events
from ._world import (
    Packet,
    PacketFilter,
    SimDisk,
    SimParams,
    SimPeer,
    SimulationFailure,
    random_params,
    replay_command,
)

_PART_NAMES = tuple(f.name for f in dataclasses.fields(CoreParts))


class Simulation(SimDriver):
    """A seeded Paxos group. See the module docstring."""

    REPLAY_TEST = "tests/paxos/test_paxos_simulation.py"

    def __init__(
        self,
        seed: int,
        params: SimParams | None = None,
        *,
        manual: bool = False,
        parts: CoreParts = DEFAULT_PARTS,
        start_tick: int = 0,
    ) -> None:
        super().__init__(
            params or random_params(seed), random.Random(seed), manual=manual, tick=start_tick
        )
        self.seed = seed
        self._replayable = params is None  # the seed alone fixes the run
        self.parts = parts
        self.started: dict[int, int] = {}  # seq -> tick first started
        self.trace: list[str] = []
        self._boots = itertools.count(1)
        self.peers = [
            self._new_peer(i, SimDisk(), recovering=False) for i in range(self.params.peer_count)
        ]
        for peer in self.peers:
            self._process(peer, peer.core.boot(self.now))

    # ---- public ---------------------------------------------------------------------------

    def describe(self) -> str:
        fields = ", ".join(
            f"{f.name}={getattr(self.params, f.name)!r}" for f in dataclasses.fields(self.params)
        )
        text = f"seed={self.seed} SimParams({fields})"
        replaced = [
            f"{name}={getattr(self.parts, name).__name__}"
            for name in _PART_NAMES
            if getattr(self.parts, name) is not getattr(DEFAULT_PARTS, name)
        ]
        if replaced:
            text += f" CoreParts({', '.join(replaced)})"
        elif self._replayable:
            text += f" (replay: {replay_command(self.seed, self.REPLAY_TEST)})"
        return text

    def run(self) -> None:
        """Fault phase, then heal and check liveness. Raises SimulationFailure with the seed."""
        try:
            for _ in range(self.params.fault_ticks):
                self._random_events()
                self.step()
            self.heal_and_check_liveness()
        except SimulationFailure as exc:
            raise SimulationFailure(f"{self.describe()} at tick {self.tick_count}: {exc}") from exc
        except AssertionError as exc:  # an invariant inside the core
            raise SimulationFailure(
                f"{self.describe()} at tick {self.tick_count}: core assertion: {exc}"
            ) from exc

    def step(self) -> None:
        """Advance one tick: deliver due messages, then fire due timers."""
        self.tick_count += 1
        while (packet := self.net.pop_due(self.tick_count)) is not None:
            if packet.held:
                self._enqueue(packet, delay=1)
                continue
            self._deliver(packet)
        for peer in self.peers:
            if not peer.alive:
                if peer.restart_at is not None and peer.restart_at <= self.tick_count:
                    self.bring_up(peer.index)
                continue
            if peer.index in self._catch_up_pending:
                self._catch_up_pending.remove(peer.index)
                self._app_catch_up(peer)
            wake = peer.core.next_wakeup()
            if wake is not None and wake <= self.now + 1e-9:
                self._process(peer, peer.core.tick(self.now))

    def run_ticks(self, ticks: int) -> None:
        for _ in range(ticks):
            self.step()

    def heal_and_check_liveness(self) -> None:
        """Heal everything, restart every peer, and require recovery and agreement in time
        (see `_faults.py`)."""
        heal_and_check_liveness(self)

    # ---- actions (used by scripted tests too) ---------------------------------------------

    def start(self, index: int, seq: int, value: Any) -> None:
        peer = self.peers[index]
        if peer.alive:
            self.started.setdefault(seq, self.tick_count)
            self._process(peer, peer.core.start(seq, value, self.now))

    def done(self, index: int, seq: int) -> None:
        peer = self.peers[index]
        if peer.alive:
            self._process(peer, peer.core.done(seq))

    def crash(self, index: int, *, restart_after: int | None = None) -> None:
        peer = self.peers[index]
        self.trace.append(f"{self.tick_count}: crash {index}")
        peer.alive = False
        peer.disk.crash()
        peer.restart_at = None if restart_after is None else self.tick_count + restart_after

    def restart(self, index: int) -> None:
        """Start a peer again from what its disk holds (nothing after a wipe)."""
        old = self.peers[index]
        self.trace.append(f"{self.tick_count}: restart {index}")
        restored = restore_state(old.disk.snapshot, old.disk.durable)
        for seq, inst in restored.instances.items():
            if inst.decided:  # what the disk says was decided must agree too
                self._check_decision(index, seq, inst.value)
        peer = self._new_peer(index, old.disk, recovering=False, restored=restored)
        self.peers[index] = peer
        self._process(peer, peer.core.boot(self.now))
        if not self.manual and peer.core.voting:
            self._catch_up_pending.append(index)  # its proposals died with the process

    def wipe(self, index: int, *, restart_after: int | None = None) -> None:
        """Crash a peer and lose its disk; it comes back recovering."""
        self.trace.append(f"{self.tick_count}: wipe {index}")
        old = self.peers[index]
        old.alive = False
        peer = self._new_peer(index, SimDisk(), recovering=True)
        peer.alive = False
        peer.fresh = True
        self.peers[index] = peer
        if restart_after is None:
            self.bring_up(index)
        else:
            peer.restart_at = self.tick_count + restart_after

    def bring_up(self, index: int) -> None:
        """Start a down peer: from its disk, or empty and recovering after a wipe."""
        peer = self.peers[index]
        if peer.alive:
            return
        if not peer.fresh:
            self.restart(index)
            return
        peer.alive = True
        peer.fresh = False
        peer.restart_at = None
        self._process(peer, peer.core.boot(self.now))

    def partition(self, groups: Iterable[Iterable[int]] | None) -> None:
        self.net.partition(groups, len(self.peers))

    def snapshot(self, index: int) -> None:
        peer = self.peers[index]
        if peer.alive:
            peer.disk.take_snapshot(peer.core.snapshot_state())

    def packets(self, where: PacketFilter | None = None) -> list[Packet]:
        return self.net.packets(where)

    def hold(self, where: PacketFilter) -> int:
        return self.net.hold(where)

    def release(self, where: PacketFilter) -> int:
        return self.net.release(where)

    def drop(self, where: PacketFilter) -> int:
        return self.net.drop(where)

    def deliver(self, where: PacketFilter) -> int:
        """Deliver now every queued packet matching `where` (held ones included), in order."""
        found = self.net.take(where)
        for packet in found:
            packet.held = False
            self._deliver(packet)
        return len(found)

    def settle(self, ticks_max: int = 500) -> None:
        """Step until no unheld packet is queued and no timer is due soon, or ticks run out."""
        for _ in range(ticks_max):
            if not any(not p.held for p in self.packets()) and all(
                not p.alive or p.core.next_wakeup() is None for p in self.peers
            ):
                return
            self.step()

    # ---- hooks for the leader simulation ----------------------------------------------------

    def _core_kwargs(self) -> dict[str, Any]:
        return {}

    # ---- internals ------------------------------------------------------------------------

    def _new_peer(
        self, index: int, disk: SimDisk, *, recovering: bool, restored: Any = None
    ) -> SimPeer:
        boot = next(self._boots)
        core = PaxosCore(
            peer_count=self.params.peer_count,
            me=index,
            rng=random.Random(self.rng.getrandbits(64)),
            boot_id=boot,
            restored=restored,
            recovering=recovering,
            parts=self.parts,
            **self._core_kwargs(),
        )
        return SimPeer(index=index, core=core, disk=disk, boot=boot)

    def _caught_up(self, peer: SimPeer) -> bool:
        core = peer.core
        if peer.fresh or not core.voting:
            return False
        return all(core.status(s)[0] is not Fate.PENDING for s in range(core.min(), core.floor + 1))

    def _app_catch_up(self, peer: SimPeer) -> None:
        """What the application does once recovered: learn every instance up to the floor."""
        core = peer.core
        for seq in range(core.min(), core.floor + 1):
            if core.status(seq)[0] is Fate.PENDING and not core.proposing(seq):
                self.start(peer.index, seq, ["noop", peer.index])

    def _random_events(self) -> None:
        random_events(self)


__all__ = ["Simulation"]
