"""Paxos messages: frozen, slotted, validated on construction, and their wire form.

Every message carries its sender (`src`) and the sender's advertised done value
(`done`), so done values ride on all Paxos traffic in both directions. On the wire a
message is a CBOR-able map `{"k": kind, field: value, ...}`; ballots are `[epoch, round,
peer]` lists. Requests travel as RPC arguments of the method named `METHOD_BY_KIND[kind]`,
replies as the RPC result. The classes are in `_requests.py` and `_replies.py`, what
they share in `_message_base.py`; this module names the sets and decodes a message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ._ballot import Ballot
from ._errors import PaxosProtocolError
from ._message_base import BALLOT, BALLOT_OR_NONE, DECISIONS, ENTRIES, MessageBase, rows_from_wire
from ._replies import (
    Accepted,
    Ack,
    AlreadyDecided,
    FenceAck,
    FenceBusy,
    FenceReject,
    Forgotten,
    HeartbeatReply,
    NotVoting,
    Promise,
    RangePromise,
    Rejected,
    StaleEpoch,
)
from ._requests import (
    Accept,
    Decide,
    DoneNotice,
    EpochNotice,
    Fence,
    Heartbeat,
    LeaderAccept,
    Prepare,
    RangePrepare,
)

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

REQUEST_TYPES: tuple[type[MessageBase], ...] = (
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
REPLY_TYPES: tuple[type[MessageBase], ...] = (
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
_BY_KIND: dict[str, type[MessageBase]] = {cls.KIND: cls for cls in REQUEST_TYPES + REPLY_TYPES}

METHOD_PREFIX = "paxos."
METHOD_BY_KIND: dict[str, str] = {cls.KIND: METHOD_PREFIX + cls.KIND for cls in REQUEST_TYPES}


def method_for(request: Request) -> str:
    """The RPC method name that carries `request` ("paxos.<kind>")."""
    return METHOD_BY_KIND[request.KIND]


def from_wire(wire: Any, *, expect: tuple[type[MessageBase], ...] | None = None) -> Message:
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
        if kind_of == BALLOT or (kind_of == BALLOT_OR_NONE and value is not None):
            value = Ballot.from_wire(value)
        elif kind_of in (ENTRIES, DECISIONS):
            value = rows_from_wire(name, value, kind_of == ENTRIES)
        kwargs[name] = value
    return cls(**kwargs)  # type: ignore[return-value]
