"""Paxos messages: frozen, slotted, validated on construction, and their wire form.

Every message carries its sender (`src`) and the sender's advertised done value
(`done`), so done values ride on all Paxos traffic in both directions. On the wire a
message is a CBOR-able map `{"k": kind, field: value, ...}`; ballots are `[epoch, round,
peer]` lists. Requests travel as RPC arguments of the method named `METHOD_BY_KIND[kind]`,
replies as the RPC result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from ._ballot import Ballot
from ._errors import PaxosProtocolError

# Field kinds used by the codec below.
_INT = "int"
_BALLOT = "ballot"
_BALLOT_OR_NONE = "ballot?"
_ANY = "any"
_BOOL = "bool"
_ENTRIES = "entries"  # ((seq, ballot, value), ...): a range promise's accepted values
_DECISIONS = "decisions"  # ((seq, value), ...): a range promise's decided values


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise PaxosProtocolError(f"field {name!r} must be an int >= {low}, got {value!r}")


def _check_rows(name: str, rows: Any, width: int) -> None:
    if not isinstance(rows, tuple):
        raise PaxosProtocolError(f"field {name!r} must be a tuple of rows")
    for row in rows:
        if not isinstance(row, tuple) or len(row) != width:
            raise PaxosProtocolError(f"field {name!r}: bad row {row!r:.80}")
        _check_int(name, row[0], 0)
        if width == 3 and not isinstance(row[1], Ballot):
            raise PaxosProtocolError(f"field {name!r}: bad ballot in {row!r:.80}")


class _Message:
    """Shared validation: each subclass lists its fields' kinds in `FIELDS`."""

    __slots__ = ()
    KIND: ClassVar[str]
    FIELDS: ClassVar[dict[str, str]]
    src: int
    done: int

    def __post_init__(self) -> None:
        _check_int("src", self.src, 0)
        _check_int("done", self.done, -1)
        for name, kind in self.FIELDS.items():
            value = getattr(self, name)
            if kind == _INT:
                _check_int(name, value, -1)
            elif kind == _BALLOT:
                if not isinstance(value, Ballot):
                    raise PaxosProtocolError(f"field {name!r} must be a Ballot, got {value!r}")
            elif kind == _BALLOT_OR_NONE:
                if value is not None and not isinstance(value, Ballot):
                    raise PaxosProtocolError(f"field {name!r} must be a Ballot or None")
            elif kind == _BOOL:
                if not isinstance(value, bool):
                    raise PaxosProtocolError(f"field {name!r} must be a bool, got {value!r}")
            elif kind in (_ENTRIES, _DECISIONS):
                _check_rows(name, value, 3 if kind == _ENTRIES else 2)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"k": self.KIND, "src": self.src, "done": self.done}
        for name, kind in self.FIELDS.items():
            value = getattr(self, name)
            if kind in (_BALLOT, _BALLOT_OR_NONE) and value is not None:
                value = value.to_wire()
            elif kind == _ENTRIES:
                value = [[seq, ballot.to_wire(), v] for seq, ballot, v in value]
            elif kind == _DECISIONS:
                value = [[seq, v] for seq, v in value]
            wire[name] = value
        return wire


# ---- requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare(_Message):
    """Phase 1a: promise not to accept ballots below `ballot` in instance `seq`."""

    KIND: ClassVar[str] = "prepare"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Accept(_Message):
    """Phase 2a: accept `value` at `ballot` in instance `seq`."""

    KIND: ClassVar[str] = "accept"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT, "value": _ANY}
    src: int
    done: int
    seq: int
    ballot: Ballot
    value: Any


@dataclass(frozen=True, slots=True)
class Decide(_Message):
    """Learn: instance `seq` is decided with `value`. Always safe to accept."""

    KIND: ClassVar[str] = "decide"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "value": _ANY}
    src: int
    done: int
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Fence(_Message):
    """Persist `epoch` and from then on reject older epochs; answer with the highest instance seen."""

    KIND: ClassVar[str] = "fence"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": _INT, "nonce": _INT}
    src: int
    done: int
    epoch: int
    nonce: int


@dataclass(frozen=True, slots=True)
class EpochNotice(_Message):
    """The sender completed a fence at `epoch`: it is persisted on a majority, ballots may use it."""

    KIND: ClassVar[str] = "epoch"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": _INT}
    src: int
    done: int
    epoch: int


@dataclass(frozen=True, slots=True)
class DoneNotice(_Message):
    """Carries only the sender's done value, to peers that have not heard it yet."""

    KIND: ClassVar[str] = "done"
    FIELDS: ClassVar[dict[str, str]] = {}
    src: int
    done: int


@dataclass(frozen=True, slots=True)
class RangePrepare(_Message):
    """Phase 1a for every instance >= `seq` at `ballot` (a leader's takeover)."""

    KIND: ClassVar[str] = "range_prepare"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class LeaderAccept(_Message):
    """Phase 2a from the leader of `ballot`, with "chosen up to `chosen` at `ballot`"."""

    KIND: ClassVar[str] = "leader_accept"
    FIELDS: ClassVar[dict[str, str]] = {
        "seq": _INT,
        "ballot": _BALLOT,
        "value": _ANY,
        "chosen": _INT,
    }
    src: int
    done: int
    seq: int
    ballot: Ballot
    value: Any
    chosen: int


@dataclass(frozen=True, slots=True)
class Heartbeat(_Message):
    """The leader of `ballot` is alive; "chosen up to `chosen`"; `round` numbers read rounds."""

    KIND: ClassVar[str] = "heartbeat"
    FIELDS: ClassVar[dict[str, str]] = {"ballot": _BALLOT, "chosen": _INT, "round": _INT}
    src: int
    done: int
    ballot: Ballot
    chosen: int
    round: int


# ---- replies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promise(_Message):
    """Phase 1b: promised `ballot`; reports the highest accepted ballot and value, if any."""

    KIND: ClassVar[str] = "promise"
    FIELDS: ClassVar[dict[str, str]] = {
        "seq": _INT,
        "ballot": _BALLOT,
        "accepted": _BALLOT_OR_NONE,
        "value": _ANY,
    }
    src: int
    done: int
    seq: int
    ballot: Ballot
    accepted: Ballot | None
    value: Any


@dataclass(frozen=True, slots=True)
class Accepted(_Message):
    """Phase 2b: accepted at `ballot`."""

    KIND: ClassVar[str] = "accepted"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class Rejected(_Message):
    """The acceptor promised a higher ballot (`promised`)."""

    KIND: ClassVar[str] = "rejected"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT, "promised": _BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot
    promised: Ballot


@dataclass(frozen=True, slots=True)
class StaleEpoch(_Message):
    """The ballot's epoch is below the acceptor's fence (`epoch`)."""

    KIND: ClassVar[str] = "stale_epoch"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT, "epoch": _INT}
    src: int
    done: int
    seq: int
    ballot: Ballot
    epoch: int


@dataclass(frozen=True, slots=True)
class NotVoting(_Message):
    """The acceptor is recovering from disk loss, or `seq` is at or below its floor."""

    KIND: ClassVar[str] = "not_voting"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "ballot": _BALLOT}
    src: int
    done: int
    seq: int
    ballot: Ballot


@dataclass(frozen=True, slots=True)
class AlreadyDecided(_Message):
    """The instance is already decided with `value`."""

    KIND: ClassVar[str] = "decided"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "value": _ANY}
    src: int
    done: int
    seq: int
    value: Any


@dataclass(frozen=True, slots=True)
class Forgotten(_Message):
    """The instance is below the sender's `min`: every peer is done with it."""

    KIND: ClassVar[str] = "forgotten"
    FIELDS: ClassVar[dict[str, str]] = {"seq": _INT, "min": _INT}
    src: int
    done: int
    seq: int
    min: int


@dataclass(frozen=True, slots=True)
class FenceAck(_Message):
    """The fence at `epoch` is persisted; `seen` is the highest instance the sender knows of."""

    KIND: ClassVar[str] = "fence_ack"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": _INT, "nonce": _INT, "seen": _INT}
    src: int
    done: int
    epoch: int
    nonce: int
    seen: int


@dataclass(frozen=True, slots=True)
class FenceReject(_Message):
    """The sender's epoch (`epoch`) is not below the fence's; retry above it."""

    KIND: ClassVar[str] = "fence_reject"
    FIELDS: ClassVar[dict[str, str]] = {"epoch": _INT, "nonce": _INT}
    src: int
    done: int
    epoch: int
    nonce: int


@dataclass(frozen=True, slots=True)
class FenceBusy(_Message):
    """The sender is itself recovering and cannot take part in a fence."""

    KIND: ClassVar[str] = "fence_busy"
    FIELDS: ClassVar[dict[str, str]] = {"nonce": _INT}
    src: int
    done: int
    nonce: int


@dataclass(frozen=True, slots=True)
class Ack(_Message):
    """Reply to a decide or done notice."""

    KIND: ClassVar[str] = "ack"
    FIELDS: ClassVar[dict[str, str]] = {}
    src: int
    done: int


@dataclass(frozen=True, slots=True)
class RangePromise(_Message):
    """Promised `ballot` for every instance >= `start` (which may exceed the request's `seq`:
    never at or below a floor); `accepted` holds every accepted value at or above `start`,
    `decided` every decided value at or above the request's `seq`."""

    KIND: ClassVar[str] = "range_promise"
    FIELDS: ClassVar[dict[str, str]] = {
        "ballot": _BALLOT,
        "start": _INT,
        "accepted": _ENTRIES,
        "decided": _DECISIONS,
    }
    src: int
    done: int
    ballot: Ballot
    start: int
    accepted: tuple[tuple[int, Ballot, Any], ...]
    decided: tuple[tuple[int, Any], ...]


@dataclass(frozen=True, slots=True)
class HeartbeatReply(_Message):
    """`ok`: the sender votes and promised nothing above `ballot` (its highest promise is
    `promised`, its epoch threshold `epoch`)."""

    KIND: ClassVar[str] = "heartbeat_reply"
    FIELDS: ClassVar[dict[str, str]] = {
        "ballot": _BALLOT,
        "round": _INT,
        "ok": _BOOL,
        "promised": _BALLOT_OR_NONE,
        "epoch": _INT,
    }
    src: int
    done: int
    ballot: Ballot
    round: int
    ok: bool
    promised: Ballot | None
    epoch: int


Request = (
    Prepare
    | Accept
    | Decide
    | Fence
    | EpochNotice
    | DoneNotice
    | RangePrepare
    | LeaderAccept
    | Heartbeat
)
Reply = (
    Promise
    | Accepted
    | Rejected
    | StaleEpoch
    | NotVoting
    | AlreadyDecided
    | Forgotten
    | FenceAck
    | FenceReject
    | FenceBusy
    | Ack
    | RangePromise
    | HeartbeatReply
)
Message = Request | Reply

REQUEST_TYPES: tuple[type[_Message], ...] = (
    Prepare,
    Accept,
    Decide,
    Fence,
    EpochNotice,
    DoneNotice,
    RangePrepare,
    LeaderAccept,
    Heartbeat,
)
REPLY_TYPES: tuple[type[_Message], ...] = (
    Promise,
    Accepted,
    Rejected,
    StaleEpoch,
    NotVoting,
    AlreadyDecided,
    Forgotten,
    FenceAck,
    FenceReject,
    FenceBusy,
    Ack,
    RangePromise,
    HeartbeatReply,
)
_BY_KIND: dict[str, type[_Message]] = {cls.KIND: cls for cls in REQUEST_TYPES + REPLY_TYPES}

METHOD_PREFIX = "paxos."
METHOD_BY_KIND: dict[str, str] = {cls.KIND: METHOD_PREFIX + cls.KIND for cls in REQUEST_TYPES}


def method_for(request: Request) -> str:
    """The RPC method name that carries `request` ("paxos.<kind>")."""
    return METHOD_BY_KIND[request.KIND]


def from_wire(wire: Any, *, expect: tuple[type[_Message], ...] | None = None) -> Message:
    """Decode and validate a message from a peer.

    Args:
        wire: the decoded CBOR map.
        expect: the message classes acceptable here (requests for a handler, replies for a caller).

    Raises:
        PaxosProtocolError: unknown kind, missing or extra fields, or a field of the wrong type.
    """
    if not isinstance(wire, dict):
        raise PaxosProtocolError(f"message must be a map, got {type(wire).__name__}")
    kind = wire.get("k")
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None or (expect is not None and cls not in expect):
        raise PaxosProtocolError(f"unexpected message kind {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if set(wire) != names | {"k"}:
        raise PaxosProtocolError(f"{kind} message fields {sorted(wire)} != {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for name in names:
        value = wire[name]
        kind_of = cls.FIELDS.get(name)
        if kind_of == _BALLOT or (kind_of == _BALLOT_OR_NONE and value is not None):
            value = Ballot.from_wire(value)
        elif kind_of in (_ENTRIES, _DECISIONS):
            value = _rows_from_wire(name, value, kind_of == _ENTRIES)
        kwargs[name] = value
    return cls(**kwargs)  # type: ignore[return-value]


def _rows_from_wire(name: str, raw: Any, with_ballot: bool) -> tuple[tuple[Any, ...], ...]:
    if not isinstance(raw, list):
        raise PaxosProtocolError(f"field {name!r} must be a list")
    rows: list[tuple[Any, ...]] = []
    for row in raw:
        if not isinstance(row, list) or len(row) != (3 if with_ballot else 2):
            raise PaxosProtocolError(f"field {name!r}: bad row {row!r:.80}")
        if with_ballot:
            rows.append((row[0], Ballot.from_wire(row[1]), row[2]))
        else:
            rows.append((row[0], row[1]))
    return tuple(rows)
