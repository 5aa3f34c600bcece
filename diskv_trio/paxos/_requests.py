"""Paxos requests: what a peer asks of another (or of its own acceptor).

Each travels as the argument of the RPC method named after its kind (`METHOD_BY_KIND` in
`_messages.py`); its answer is one of the replies in `_replies.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ._ballot import Ballot
from ._message_base import ANY, BALLOT, INT, MessageBase


@dataclass(frozen=True, slots=True)
class Prepare(MessageBase):
    """Phase 1a: promise not to accept ballots below `ballot` in instance `seq`."""

    KIND: ClassVar[str] = "prepare"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Accept(MessageBase):
    """Phase 2a: accept `value` at `ballot` in instance `seq`."""

    KIND: ClassVar[str] = "accept"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT, "value": ANY}
    src: int
    done: int
    seq: int
    ballot: Ballot
    value: Any


@dataclass(frozen=True, slots=True)
class Decide(MessageBase):
    """Learn: instance `seq` is decided with `value`. Always safe to accept."""

    KIND: ClassVar[str] = "decide"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "value": ANY}
    src: int
    done: int
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Fence(MessageBase):
    """Persist `epoch` and from then on reject older epochs; answer with the highest instance seen."""

    KIND: ClassVar[str] = "fence"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": INT, "nonce": INT}
    src: int
    done: int
    epoch: int
    nonce: int


@dataclass(frozen=True, slots=True)
class EpochNotice(MessageBase):
    """The sender completed a fence at `epoch`: it is persisted on a majority, ballots may use it."""

    KIND: ClassVar[str] = "epoch"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": INT}
    src: int
    done: int
    epoch: int


@dataclass(frozen=True, slots=True)
class DoneNotice(MessageBase):
    """Carries only the sender's done value, to peers that have not heard it yet."""

    KIND: ClassVar[str] = "done"
    FIELDS: ClassVar[dict[str, str]] = {}
    src: int
    done: int


@dataclass(frozen=True, slots=True)
class RangePrepare(MessageBase):
    """Phase 1a for every instance >= `seq` at `ballot` (a leader's takeover)."""

    KIND: ClassVar[str] = "range_prepare"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class LeaderAccept(MessageBase):
    """Phase 2a from the leader of `ballot`, with "chosen up to `chosen` at `ballot`"."""

    KIND: ClassVar[str] = "leader_accept"
    FIELDS: ClassVar[dict[str, str]] = {
        "seq": INT,
        "ballot": BALLOT,
        "value": ANY,
        "chosen": INT,
    }
    src: int
    done: int
    seq: int
    ballot: Ballot
    value: Any
    chosen: int


@dataclass(frozen=True, slots=True)
class Heartbeat(MessageBase):
    """The leader of `ballot` is alive; "chosen up to `chosen`"; `round` numbers read rounds."""

    KIND: ClassVar[str] = "heartbeat"
    FIELDS: ClassVar[dict[str, str]] = {"ballot": BALLOT, "chosen": INT, "round": INT}
    src: int
    done: int
    ballot: Ballot
    chosen: int
    round: int
