"""Who sent a Paxos request: the connection's authenticated peer, never a field it filled in.

Rules kept here:
- A request is served only from a connection authenticated as role ``peer`` (`PEER_ROLE`)
  whose node id is one of the group's, and only if the message's `src` is that id's index.
  Fences and epoch notices are requests too: nobody else can raise a peer's epoch.
- Without a list of ids (the in-process simulation and tests) `src` is trusted.
"""

from __future__ import annotations

from typing import Any

from ._errors import PaxosProtocolError
from ._messages import Request

PEER_ROLE = "peer"
"""The role a group member's connection authenticates as (the net layer's ``Role.PEER``)."""


class SenderCheck:
    """Checks requests against the group's node ids (index -> id), or trusts `src` if None."""

    def __init__(self, peer_ids: tuple[str, ...] | None, peer_count: int) -> None:
        if peer_ids is not None and len(peer_ids) != peer_count:
            raise ValueError(f"{len(peer_ids)} peer ids for a group of {peer_count}")
        if peer_ids is not None and len(set(peer_ids)) != peer_count:
            raise ValueError("peer ids must be distinct")
        self._index = None if peer_ids is None else {node: i for i, node in enumerate(peer_ids)}

    def check(self, request: Request, context: Any) -> None:
        """Return if `context` (a net `CallContext`) may send `request`.

        Raises:
            PaxosProtocolError: not a peer's connection, an id not in the group, or a `src`
                other than the id's index.
        """
        if self._index is None:
            return
        role = getattr(context, "peer_role", None)
        if role != PEER_ROLE:
            raise PaxosProtocolError(f"{request.KIND} from role {role!r}, not a peer")
        node = getattr(context, "peer_id", None)
        index = self._index.get(node) if isinstance(node, str) else None
        if index is None:
            raise PaxosProtocolError(f"{request.KIND} from {node!r:.80}, not in this group")
        if request.src != index:
            raise PaxosProtocolError(f"{request.KIND} claims src {request.src}, sent by {index}")
