"""How a simulated peer's `Ready` is carried out: the driver's duties over the network.

Rules kept here (the duties of `_ready.py`, as `PaxosPeer` keeps them in a server):
- A `Ready`'s records are journalled in order and synced when it asks, and only then do
  its messages leave; a decision is checked against every decision made before it.
- Every message crosses the network in its wire form, so the codec is exercised too. Own
  acceptor calls are made directly (never lost) unless `self_via_network` is set.
- Randomness (loss, duplication, delay, spontaneous flushes) comes from the simulation's
  one seeded `rng`, in a fixed order; in `manual` runs nothing random happens.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from diskv_trio.paxos import PaxosRecord, Ready
from diskv_trio.paxos._messages import from_wire

from ._network import SimNetwork
from ._world import TICK_S, Packet, SimParams, SimPeer, SimulationFailure


class SimDriver:
    """The peers of a group, the network between them, and what every input's `Ready` does."""

    def __init__(self, params: SimParams, rng: random.Random, *, manual: bool, tick: int) -> None:
        self.params = params
        self.rng = rng
        self.manual = manual
        self.tick_count = tick
        self.net = SimNetwork()
        self.peers: list[SimPeer] = []
        self.decisions: dict[int, Any] = {}
        # Every journal write: (peer, records, must_sync), for transcripts to print.
        self.journal_log: list[tuple[int, list[PaxosRecord], bool]] = []
        self._local: list[Packet] | None = None  # own-acceptor calls being processed
        self._catch_up_pending: list[int] = []  # peers that must learn up to their floor

    @property
    def now(self) -> float:
        return self.tick_count * TICK_S

    # ---- hooks for the leader simulation ---------------------------------------------------

    self_via_network = False  # own-acceptor calls queue like any message (may be delayed)

    def _on_ready(self, peer: SimPeer, ready: Ready) -> None:
        """After the driver's duties for `ready`; the leader simulation handles reads here."""

    # ---- the duties -------------------------------------------------------------------------

    def _enqueue(self, packet: Packet, *, delay: int | None = None) -> None:
        if delay is None:
            delay = 1 if self.manual else self.rng.randint(1, self.params.delay_ticks_max)
        self.net.put(packet, self.tick_count + delay)

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
        if not self.net.connected(packet.src, packet.dst):
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

    def _check_decision(self, index: int, seq: int, value: Any) -> None:
        if seq in self.decisions and self.decisions[seq] != value:
            raise SimulationFailure(
                f"agreement violated: instance {seq} decided {self.decisions[seq]!r} "
                f"and then {value!r} (at peer {index})"
            )
        self.decisions.setdefault(seq, value)
