"""What one input to the core produces (`Ready`), and the builder every part of the core
writes it through.

Rules kept here (raft's Ready/Advance): the driver appends `records` in order, syncs them
when `must_sync` is set, and only then sends `messages` and `reply`, then calls
`PaxosCore.advance(ready, now)`. A record that needs no sync (a decision, a new `min()`)
may still be lost in a crash; everything it says can be learned again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ._messages import Reply, Request
from ._records import PaxosRecord


class Fate(enum.IntEnum):
    """The course's fates (Go iota+1)."""

    DECIDED = 1
    PENDING = 2
    FORGOTTEN = 3


@dataclass(frozen=True, slots=True)
class Envelope:
    """A request for peer `dst` (possibly this peer: its own acceptor is called directly)."""

    dst: int
    msg: Request


@dataclass(slots=True)
class Ready:
    """What one input produced. See the module docstring for the driver's duties."""

    records: list[PaxosRecord] = field(default_factory=list)
    must_sync: bool = False
    messages: list[Envelope] = field(default_factory=list)
    reply: Reply | None = None
    decided: list[tuple[int, Any]] = field(default_factory=list)  # newly (seq, value)
    forgotten: bool = False  # min() advanced
    advertise_done: int | None = None  # applied by advance(), after the sync
    voting: bool | None = None  # set when the voting state changed
    proposed: bool | None = None  # `propose`: the leader took the value
    reads: list[tuple[int, int]] = field(default_factory=list)  # confirmed (read id, index)
    reads_failed: list[int] = field(default_factory=list)  # read ids refused: not leader
    dropped: list[Any] = field(default_factory=list)  # proposed values dropped on step-down
    leading: bool | None = None  # set when this peer became or stopped being the leader


class Output:
    """The `Ready` of the input being handled; the acceptor, proposer and fence add to it."""

    __slots__ = ("ready",)

    def __init__(self) -> None:
        self.ready = Ready()

    def begin(self) -> None:
        self.ready = Ready()

    def end(self) -> Ready:
        ready, self.ready = self.ready, Ready()
        return ready

    def record(self, record: PaxosRecord, *, sync: bool) -> None:
        self.ready.records.append(record)
        if sync:
            self.ready.must_sync = True

    def send(self, peer: int, msg: Request) -> None:
        self.ready.messages.append(Envelope(peer, msg))
