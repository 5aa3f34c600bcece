"""Deterministic simulation of a Paxos group: one seed drives clock, network, disks and faults.

Each simulated peer is a `PaxosCore` with a `SimDisk` (a journal whose unsynced tail is lost
in a crash). The network loses, duplicates, delays (hence reorders) and partitions messages.
Peers crash and restart from their disk, or lose their disk and restart recovering.

Checkers:
- agreement: every decision ever made (a journalled "decided" record, including by peers
  later wiped) is compared with a global record; a second value for an instance fails at once.
- liveness: after the fault phase the network heals and every peer comes back; every
  recovering peer must be voting and learn up to its floor; then (half the seeds) one peer
  stops for good, and every instance ever started must be decided (or forgotten) at every
  live peer, all within a bounded number of ticks.

A failure raises `SimulationFailure` whose message starts with the seed and parameters.
The same harness runs scripted schedules (`manual=True`): nothing random happens, and the
test delivers, holds or drops individual messages.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Iterable
from typing import Any

from . import _sim_faults
from ._core import PaxosCore
from ._messages import from_wire
from ._ready import Fate, Ready
from ._records import PaxosRecord, restore_state
from ._sim_world import (
    TICK_S,
    Packet,
    PacketFilter,
    SimDisk,
    SimParams,
    SimPeer,
    SimulationFailure,
    random_params,
    replay_command,
)


class Simulation:
    """A seeded Paxos group. See the module docstring."""

    core_class: type[PaxosCore] = PaxosCore

    def __init__(
        self,
        seed: int,
        params: SimParams | None = None,
        *,
        manual: bool = False,
        naive_rejoin: bool = False,
        start_tick: int = 0,
    ) -> None:
        self.seed = seed
        self._replayable = params is None  # the seed alone fixes the run
        self.params = params or random_params(seed)
        self.manual = manual
        self.naive_rejoin = naive_rejoin
        self.rng = random.Random(seed)
        self.tick_count = start_tick
        self.decisions: dict[int, Any] = {}
        self.started: dict[int, int] = {}  # seq -> tick first started
        self.trace: list[str] = []
        # Every journal write: (peer, records, must_sync), for transcripts to print.
        self.journal_log: list[tuple[int, list[PaxosRecord], bool]] = []
        self._boots = itertools.count(1)
        self._order = itertools.count()
        self._queue: list[tuple[int, int, Packet]] = []
        self._groups: list[int] | None = None  # peer -> group id; None when connected
        self._local: list[Packet] | None = None  # own-acceptor calls being processed
        self._catch_up_pending: list[int] = []
        self.peers = [
            self._new_peer(i, SimDisk(), recovering=False) for i in range(self.params.peer_count)
        ]
        for peer in self.peers:
            self._process(peer, peer.core.boot(self.now))

    # ---- public ---------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.tick_count * TICK_S

    def describe(self) -> str:
        fields = ", ".join(
            f"{f.name}={getattr(self.params, f.name)!r}" for f in dataclasses.fields(self.params)
        )
        text = f"seed={self.seed} naive_rejoin={self.naive_rejoin} SimParams({fields})"
        if self._replayable and not self.naive_rejoin:
            text += f" (replay: {replay_command(self.seed)})"
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
        while self._queue and self._queue[0][0] <= self.tick_count:
            _, _, packet = heapq.heappop(self._queue)
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
        (see `_sim_faults.heal_and_check_liveness`)."""
        _sim_faults.heal_and_check_liveness(self)

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
        if groups is None:
            self._groups = None
            return
        assignment = [-1] * len(self.peers)
        for gid, group in enumerate(groups):
            for index in group:
                assignment[index] = gid
        self._groups = assignment

    def snapshot(self, index: int) -> None:
        peer = self.peers[index]
        if peer.alive:
            peer.disk.take_snapshot(peer.core.snapshot_state())

    def packets(self, where: PacketFilter | None = None) -> list[Packet]:
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

    def deliver(self, where: PacketFilter) -> int:
        """Deliver now every queued packet matching `where` (held ones included), in order."""
        found = self.packets(where)
        ids = {id(p) for p in found}
        self._queue = [item for item in self._queue if id(item[2]) not in ids]
        heapq.heapify(self._queue)
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

    self_via_network = False  # own-acceptor calls queue like any message (may be delayed)

    def _core_kwargs(self) -> dict[str, Any]:
        return {}

    def _on_ready(self, peer: SimPeer, ready: Ready) -> None:
        """After the driver's duties for `ready`; the leader simulation handles reads here."""

    # ---- internals ------------------------------------------------------------------------

    def _new_peer(
        self, index: int, disk: SimDisk, *, recovering: bool, restored: Any = None
    ) -> SimPeer:
        boot = next(self._boots)
        core = self.core_class(
            peer_count=self.params.peer_count,
            me=index,
            rng=random.Random(self.rng.getrandbits(64)),
            boot_id=boot,
            restored=restored,
            recovering=recovering,
            naive_rejoin=self.naive_rejoin,
            **self._core_kwargs(),
        )
        return SimPeer(index=index, core=core, disk=disk, boot=boot)

    def _connected(self, a: int, b: int) -> bool:
        return a == b or self._groups is None or self._groups[a] == self._groups[b]

    def _enqueue(self, packet: Packet, *, delay: int | None = None) -> None:
        if delay is None:
            delay = 1 if self.manual else self.rng.randint(1, self.params.delay_ticks_max)
        heapq.heappush(self._queue, (self.tick_count + delay, next(self._order), packet))

    def _send(self, packet: Packet) -> None:
        if not self.manual and packet.src != packet.dst:
            if self.rng.random() < self.params.loss:
                if self.rng.random() < 0.5:  # the transport notices, like a refused connection
                    self._unreachable(packet)
                return
            if self.rng.random() < self.params.duplicate:
                self._enqueue(dataclasses.replace(packet))
        self._enqueue(packet)

    def _unreachable(self, packet: Packet) -> None:
        sender = self.peers[packet.sender]
        if sender.alive and sender.boot == packet.sender_boot:
            self._process(sender, sender.core.on_unreachable(packet.envelope, self.now))

    def _deliver(self, packet: Packet) -> None:
        if not self._connected(packet.src, packet.dst):
            if not self.manual and self.rng.random() < 0.5:
                self._unreachable(packet)
            return
        if packet.reply is None:
            peer = self.peers[packet.dst]
            if not peer.alive:
                self._unreachable(packet)
                return
            self._handle_request(peer, packet)
        else:
            sender = self.peers[packet.dst]
            if sender.alive and sender.boot == packet.sender_boot:
                self._process(sender, sender.core.on_reply(packet.envelope, packet.reply, self.now))

    def _handle_request(self, peer: SimPeer, packet: Packet) -> None:
        msg = from_wire(packet.envelope.msg.to_wire())  # the wire form must round-trip
        ready = peer.core.on_request(msg, self.now)  # type: ignore[arg-type]
        self._process(peer, ready)
        assert ready.reply is not None
        reply = from_wire(ready.reply.to_wire())
        out = Packet(
            src=peer.index,
            dst=packet.sender,
            envelope=packet.envelope,
            sender=packet.sender,
            sender_boot=packet.sender_boot,
            reply=reply,  # type: ignore[arg-type]
        )
        if packet.sender == peer.index and not self.self_via_network:
            assert self._local is not None
            self._local.append(out)
        else:
            self._send(out)

    def _process(self, peer: SimPeer, ready: Ready) -> None:
        """The driver's duties: journal, sync if asked, check decisions, send."""
        peer.disk.append(ready.records)
        if ready.records or ready.must_sync:
            self.journal_log.append((peer.index, list(ready.records), ready.must_sync))
        if ready.must_sync:
            peer.disk.sync()
        elif not self.manual and self.rng.random() < self.params.flush_rate:
            peer.disk.sync()
        if ready.voting and not self.manual:
            self._catch_up_pending.append(peer.index)
        for seq, value in ready.decided:
            self._check_decision(peer.index, seq, value)
        peer.core.advance(ready, self.now)
        self._on_ready(peer, ready)
        first = self._local is None
        if first:
            self._local = []
        local = self._local
        assert local is not None
        for envelope in ready.messages:
            packet = Packet(
                src=peer.index,
                dst=envelope.dst,
                envelope=envelope,
                sender=peer.index,
                sender_boot=peer.boot,
            )
            if envelope.dst == peer.index and not self.self_via_network:
                local.append(packet)  # own acceptor: called directly, never lost
            else:
                self._send(packet)
        if first:
            try:
                while local:
                    packet = local.pop(0)
                    if packet.reply is None:
                        self._handle_request(self.peers[packet.dst], packet)
                    else:
                        self._deliver(packet)
            finally:
                self._local = None

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

    def _check_decision(self, index: int, seq: int, value: Any) -> None:
        if seq in self.decisions and self.decisions[seq] != value:
            raise SimulationFailure(
                f"agreement violated: instance {seq} decided {self.decisions[seq]!r} "
                f"and then {value!r} (at peer {index})"
            )
        self.decisions.setdefault(seq, value)

    def _random_events(self) -> None:
        _sim_faults.random_events(self)


__all__ = [
    "TICK_S",
    "Packet",
    "SimParams",
    "Simulation",
    "SimulationFailure",
    "random_params",
    "replay_command",
]
