"""One call to another peer, as the core sees it: its reply, or None (unreachable)."""

from __future__ import annotations

import logging

import trio

from . import _limits
from ._errors import PaxosProtocolError, PaxosUnreachable
from ._messages import REPLY_TYPES, Reply, from_wire, method_for
from ._ready import Envelope
from ._storage import PaxosTransport

logger = logging.getLogger("diskv.paxos")


async def call_peer(transport: PaxosTransport, envelope: Envelope) -> Reply | None:
    """The decoded reply of `envelope.dst`; None when the call failed in any way, the reply
    did not parse, or it came from another peer than the one called."""
    try:
        wire = await transport.call(
            envelope.dst,
            method_for(envelope.msg),
            envelope.msg.to_wire(),
            deadline_s=_limits.rpc_deadline_s,
        )
        decoded = from_wire(wire, expect=REPLY_TYPES)
    except (PaxosUnreachable, PaxosProtocolError, trio.TooSlowError):
        return None
    assert isinstance(decoded, REPLY_TYPES)
    reply: Reply = decoded  # type: ignore[assignment]
    if reply.src != envelope.dst:
        logger.warning("paxos: reply from peer %d to a call to %d", reply.src, envelope.dst)
        return None
    return reply
