"""The simulated world of a Paxos simulation: parameters, disks, peers and packets.

Rules kept here:
- A `SimDisk` keeps the wire form of every record, as a journal does; what was not synced
  is lost in a crash.
- `random_params(seed)` draws a run's shape from its seed alone, so a seed replays a run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cbor2

from diskv_trio.paxos import PaxosCore, PaxosRecord
from diskv_trio.paxos._messages import Reply
from diskv_trio.paxos._ready import Envelope

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

    def append(self, records: Iterable[PaxosRecord]) -> None:
        # Encode now, as a real journal does: later changes to the objects cannot leak in.
        self.unsynced.extend(cbor2.loads(cbor2.dumps(r.to_wire())) for r in records)

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


def replay_command(seed: int, test: str = "tests/paxos/test_paxos_simulation.py") -> str:
    """The command that runs one seed again (a seed alone fixes a run)."""
    return f"pytest {test} --paxos-seed {seed}"
