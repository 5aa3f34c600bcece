"""Paxos replies: an acceptor's answer to each request, sent back as the RPC result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ._ballot import Ballot
from ._message_base import ANY, BALLOT, BALLOT_OR_NONE, BOOL, DECISIONS, ENTRIES, INT, MessageBase


@dataclass(frozen=True, slots=True)
class Promise(MessageBase):
    """Phase 1b: promised `ballot`; reports the highest accepted ballot and value, if any."""

    KIND: ClassVar[str] = "promise"
    FIELDS: ClassVar[dict[str, str]] = {
        "seq": INT,
        "ballot": BALLOT,
        "accepted": BALLOT_OR_NONE,
        "value": ANY,
    }
    src: int
    done: int
    seq: int
    ballot: Ballot
    accepted: Ballot | None
    value: Any


@dataclass(frozen=True, slots=True)
class Accepted(MessageBase):
    """Phase 2b: accepted at `ballot`."""

    KIND: ClassVar[str] = "accepted"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Rejected(MessageBase):
    """The acceptor promised a higher ballot (`promised`)."""

    KIND: ClassVar[str] = "rejected"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT, "promised": BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot
    promised: Ballot


@dataclass(frozen=True, slots=True)
class StaleEpoch(MessageBase):
    """The ballot's epoch is below the acceptor's fence (`epoch`)."""

    KIND: ClassVar[str] = "stale_epoch"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT, "epoch": INT}
    src: int
    done: int
    seq: int
    ballot: Ballot
    epoch: int


@dataclass(frozen=True, slots=True)
class NotVoting(MessageBase):
    """The acceptor is recovering from disk loss, or `seq` is at or below its floor."""

    KIND: ClassVar[str] = "not_voting"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "ballot": BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class AlreadyDecided(MessageBase):
    """The instance is already decided with `value`."""

    KIND: ClassVar[str] = "decided"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "value": ANY}
    src: int
    done: int
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Forgotten(MessageBase):
    """The instance is below the sender's `min`: every peer is done with it."""

    KIND: ClassVar[str] = "forgotten"
    FIELDS: ClassVar[dict[str, str]] = {"seq": INT, "min": INT}
    src: int
    done: int
    seq: int
    min: int


@dataclass(frozen=True, slots=True)
class FenceAck(MessageBase):
    """The fence at `epoch` is persisted; `seen` is the highest instance the sender knows of."""

    KIND: ClassVar[str] = "fence_ack"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": INT, "nonce": INT, "seen": INT}
    src: int
    done: int
    epoch: int
    nonce: int
    seen: int


@dataclass(frozen=True, slots=True)
class FenceReject(MessageBase):
    """The sender's epoch (`epoch`) is not below the fence's; retry above it."""

    KIND: ClassVar[str] = "fence_reject"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": INT, "nonce": INT}
    src: int
    done: int
    epoch: int
    nonce: int


@dataclass(frozen=True, slots=True)
class FenceBusy(MessageBase):
    """The sender is itself recovering and cannot take part in a fence."""

    KIND: ClassVar[str] = "fence_busy"
    FIELDS: ClassVar[dict[str, str]] = {"nonce": INT}
    src: int
    done: int
    nonce: int


@dataclass(frozen=True, slots=True)
class Ack(MessageBase):
    """Reply to a decide or done notice."""

    KIND: ClassVar[str] = "ack"
    FIELDS: ClassVar[dict[str, str]] = {}
    src: int
    done: int


@dataclass(frozen=True, slots=True)
class RangePromise(MessageBase):
    """Promised `ballot` for every instance >= `start` (which may exceed the request's `seq`:
    never at or below a floor); `accepted` holds every accepted value at or above `start`,
    `decided` every decided value at or above the request's `seq`."""

    KIND: ClassVar[str] = "range_promise"
    FIELDS: ClassVar[dict[str, str]] = {
        "ballot": BALLOT,
        "start": INT,
        "accepted": ENTRIES,
        "decided": DECISIONS,
    }
    src: int
    done: int
    ballot: Ballot
    start: int
    accepted: tuple[tuple[int, Ballot, Any], ...]
    decided: tuple[tuple[int, Any], ...]


@dataclass(frozen=True, slots=True)
class HeartbeatReply(MessageBase):
    """`ok`: the sender votes and promised nothing above `ballot` (its highest promise is
    `promised`, its epoch threshold `epoch`)."""

    KIND: ClassVar[str] = "heartbeat_reply"
    FIELDS: ClassVar[dict[str, str]] = {
        "ballot": BALLOT,
        "round": INT,
        "ok": BOOL,
        "promised": BALLOT_OR_NONE,
        "epoch": INT,
    }
    src: int
    done: int
    ballot: Ballot
    round: int
    ok: bool
    promised: Ballot | None
    epoch: int
