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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cbor2

from ._core import (
    Envelope,
    Fate,
    PaxosCore,
    Ready,
    restore_state,
)
from ._messages import Reply, from_wire

TICK_S = 0.01  # simulated seconds per tick


class SimulationFailure(AssertionError):
    """A checker failed; the message names the seed and parameters to replay it."""


@dataclass(slots=True)
class SimParams:
    """One simulation run's shape. `random_params(seed)` draws them from the seed."""

    peer_count: int = 3
    loss: float = 0.05  # probability a message is lost
    duplicate: float = 0.02  # probability a message is delivered twice
    delay_ticks_max: int = 4  # delivery delay is 1..this many ticks (so messages reorder)
    fault_ticks: int = 1500  # length of the fault phase
    liveness_ticks_max: int = 1500  # bound for recovery + agreement after healing
    start_rate: float = 0.08  # per tick: the application starts an instance somewhere
    done_rate: float = 0.02  # per tick: some peer calls done() on an instance it decided
    crash_rate: float = 0.004  # per tick: a peer crashes (disk kept, unsynced records lost)
    wipe_rate: float = 0.002  # per tick: a peer loses its disk
    partition_rate: float = 0.006  # per tick: the network splits at random
    heal_rate: float = 0.01  # per tick: the partition heals
    snapshot_rate: float = 0.01  # per tick: a peer snapshots its journal
    flush_rate: float = 0.05  # per tick: a peer's disk writes back unsynced records
    down_ticks_max: int = 150  # a crashed peer restarts after 1..this many ticks


def random_params(seed: int) -> SimParams:
    rng = random.Random(seed ^ 0x5EED)
    return SimParams(
        peer_count=rng.choice([3, 3, 5]),
        loss=rng.choice([0.0, 0.05, 0.2, 0.35]),
        duplicate=rng.choice([0.0, 0.02, 0.1]),
        delay_ticks_max=rng.choice([1, 3, 8]),
        crash_rate=rng.choice([0.0, 0.003, 0.01]),
        wipe_rate=rng.choice([0.0, 0.002, 0.006]),
        partition_rate=rng.choice([0.0, 0.005, 0.02]),
    )


@dataclass(slots=True)
class SimDisk:
    """A journal with a snapshot; records after the last sync are lost in a crash."""

    snapshot: dict[str, Any] | None = None
    durable: list[dict[str, Any]] = field(default_factory=list)
    unsynced: list[dict[str, Any]] = field(default_factory=list)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        # Encode now, as a real journal does: later changes to the objects cannot leak in.
        self.unsynced.extend(cbor2.loads(cbor2.dumps(r)) for r in records)

    def sync(self) -> None:
        self.durable.extend(self.unsynced)
        self.unsynced.clear()

    def crash(self) -> None:
        self.unsynced.clear()

    def take_snapshot(self, state: dict[str, Any]) -> None:
        self.sync()
        self.snapshot = cbor2.loads(cbor2.dumps(state))
        self.durable.clear()


@dataclass(slots=True)
class SimPeer:
    index: int
    core: PaxosCore
    disk: SimDisk
    boot: int
    alive: bool = True
    restart_at: int | None = None
    fresh: bool = False  # lost its disk: boots the core it already has, recovering


@dataclass(slots=True)
class Packet:
    """A request on its way to `envelope.dst`, or (when `reply` is set) its reply coming back."""

    src: int
    dst: int
    envelope: Envelope
    sender: int  # the peer that sent the request
    sender_boot: int
    reply: Reply | None = None
    held: bool = False

    @property
    def kind(self) -> str:
        return self.reply.KIND if self.reply is not None else self.envelope.msg.KIND


PacketFilter = Callable[[Packet], bool]


class Simulation:
    """A seeded Paxos group. See the module docstring."""

    def __init__(
        self,
        seed: int,
        params: SimParams | None = None,
        *,
        manual: bool = False,
        naive_rejoin: bool = False,
    ) -> None:
        self.seed = seed
        self._replayable = params is None  # the seed alone fixes the run
        self.params = params or random_params(seed)
        self.manual = manual
        self.naive_rejoin = naive_rejoin
        self.rng = random.Random(seed)
        self.tick_count = 0
        self.decisions: dict[int, Any] = {}
        self.started: dict[int, int] = {}  # seq -> tick first started
        self.trace: list[str] = []
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
        """Heal everything, restart every peer, and require recovery and agreement in time.

        Every recovering peer must vote again and learn up to its floor. Then, for half the
        seeds, one peer is stopped for good: the rest (a majority of intact peers) must
        still decide every instance ever started.
        """
        self.params.loss = 0.0
        self.params.duplicate = 0.0
        self._groups = None
        for packet in self.packets():
            packet.held = False
        for peer in self.peers:
            if not peer.alive:
                self.bring_up(peer.index)
        deadline = self.tick_count + self.params.liveness_ticks_max
        while not all(p.core.voting for p in self.peers):
            if self.tick_count >= deadline:
                raise SimulationFailure(
                    "recovering peers did not become voting after healing: "
                    + str([p.core.statistics() for p in self.peers])
                )
            self.step()
        while not all(self._caught_up(p) for p in self.peers):
            if (deadline - self.tick_count) % 100 == 0:  # the application retries
                for peer in self.peers:
                    self._app_catch_up(peer)
            if self.tick_count >= deadline:
                raise SimulationFailure(
                    "recovered peers did not learn up to their floor after healing: "
                    + str([p.core.statistics() for p in self.peers])
                )
            self.step()
        if self.rng.random() < 0.5:
            self.crash(self.rng.randrange(len(self.peers)))  # and it stays down
        live = [peer for peer in self.peers if peer.alive]
        top = max([*self.started, *self.decisions, -1])
        for peer in live:
            for seq in range(peer.core.min(), top + 1):
                self.start(peer.index, seq, ["noop", peer.index])
        while True:
            missing = [
                (peer.index, seq)
                for peer in live
                for seq in range(peer.core.min(), top + 1)
                if peer.core.status(seq)[0] is Fate.PENDING
            ]
            if not missing:
                return
            if self.tick_count >= deadline:
                raise SimulationFailure(
                    f"not decided {self.params.liveness_ticks_max} ticks after healing: "
                    f"(peer, seq) {missing[:10]}; {[p.core.statistics() for p in self.peers]}"
                )
            self.step()

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
            naive_rejoin=self.naive_rejoin,
        )
        return SimPeer(index=index, core=core, disk=disk, boot=boot)

    def _connected(self, a: int, b: int) -> bool:
        return a == b or self._groups is None or self._groups[a] == self._groups[b]

    def _enqueue(self, packet: Packet, *, delay: int | None = None) -> None:
        if delay is None:
            delay = 1 if self.manual else self.rng.randint(1, self.params.delay_ticks_max)
        heapq.heappush(self._queue, (self.tick_count + delay, next(self._order), packet))

    def _send(self, packet: Packet) -> None:
        if not self.manual:
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
        if packet.sender == peer.index:
            assert self._local is not None
            self._local.append(out)
        else:
            self._send(out)

    def _process(self, peer: SimPeer, ready: Ready) -> None:
        """The driver's duties: journal, sync if asked, check decisions, send."""
        peer.disk.append(ready.records)
        if ready.must_sync:
            peer.disk.sync()
        elif not self.manual and self.rng.random() < self.params.flush_rate:
            peer.disk.sync()
        if ready.voting and not self.manual:
            self._catch_up_pending.append(peer.index)
        for seq, value in ready.decided:
            self._check_decision(peer.index, seq, value)
        peer.core.advance(ready, self.now)
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
            if envelope.dst == peer.index:
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
        rng = self.rng
        p = self.params
        n = p.peer_count
        alive = [peer.index for peer in self.peers if peer.alive]
        if alive and rng.random() < p.start_rate:
            top = max([*self.started, -1])
            seq = rng.randint(max(0, top - 5), top + 3)
            index = rng.choice(alive)
            self.start(index, seq, [index, seq, rng.randint(0, 9)])
        if alive and rng.random() < p.done_rate:
            index = rng.choice(alive)
            core = self.peers[index].core
            decided = [
                s for s in range(core.min(), core.max() + 1) if core.status(s)[0] is Fate.DECIDED
            ]
            if decided:
                self.done(index, rng.choice(decided))
        if alive and rng.random() < p.snapshot_rate:
            self.snapshot(rng.choice(alive))
        if alive and rng.random() < p.crash_rate:
            self.crash(rng.choice(alive), restart_after=rng.randint(1, p.down_ticks_max))
        if alive and rng.random() < p.wipe_rate:
            index = rng.choice(alive)
            # Losing more disks than this would be losing a majority's knowledge: a peer
            # counts as lacking until it is voting and has learned every instance <= floor.
            lacking = sum(
                1 for peer in self.peers if peer.index != index and not self._caught_up(peer)
            )
            if lacking + 1 <= n - (n // 2 + 1):
                self.wipe(index, restart_after=rng.randint(1, p.down_ticks_max))
        if rng.random() < p.partition_rate:
            self._groups = [rng.randrange(3) for _ in range(n)]
        elif self._groups is not None and rng.random() < p.heal_rate:
            self._groups = None


def replay_command(seed: int) -> str:
    return f"pytest tests/paxos/test_paxos_simulation.py --paxos-seed {seed}"


__all__ = ["SimParams", "Simulation", "SimulationFailure", "random_params", "TICK_S"]
