"""A client's op into the replicated state machine: refusals as typed errors, and ops that
reach a replica other than the leader forwarded to it.

One home for how the shardkv and shardmaster servers answer "busy" and "not the leader",
so a client sees the same codes (`Code.BUSY`, `Code.NOT_LEADER` with the leader's index)
from either.

Rules kept here:
- A request with ``redirect`` true is answered ``ErrNotLeader`` by a follower (the client
  goes to the leader itself); any other is forwarded to the leader this replica believes
  in, with ``redirect`` set so that it is forwarded at most once.
- Forwarding waits up to `LEADER_WAIT_S` for a leader to be known (an election).
- A follower that cannot reach the leader runs for leader itself: the leader may still
  reach its peers (a one-way partition, a leader that accepts no connections), so their
  election timers never fire, and without this no client could reach the group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from diskv_trio.kvproto import REDIRECT, Code, not_leader_message
from diskv_trio.net import ApplicationError, NetError, RpcRemoteError

from ._leader_path import NotLeaderError
from ._rsm import ReplicatedStateMachine, ServerBusyError

if TYPE_CHECKING:
    from ._node import ReplicaNode

LEADER_WAIT_S = 1.0
"""How long a follower waits for a leader to forward to (longer than an election)."""

LEADER_POLL_S = 0.02
"""How often it looks meanwhile."""

FORWARD_DEADLINE_S = 10.0
"""Deadline of a forwarded call: the leader answers once the op is applied."""

FORWARD_ATTEMPTS = 3
"""Leaders tried in turn before the caller is told ``ErrNotLeader`` (and tries another)."""

CAMPAIGN_INTERVAL_S = 0.3
"""A follower that cannot reach the leader runs for leader at most this often (the
election timeout's minimum): one unreachable leader costs one election, not one per op."""


async def call_log(
    rsm: ReplicatedStateMachine, op: dict[str, Any], *, read: bool = False
) -> dict[str, Any]:
    """`rsm.read(op)` if `read` (the op changes nothing), else `rsm.submit(op)`.

    Raises:
        ApplicationError: ``busy`` or ``ErrNotLeader`` (its message names the leader).
    """
    try:
        return await (rsm.read(op) if read else rsm.submit(op))
    except ServerBusyError as exc:
        raise ApplicationError(Code.BUSY, str(exc)) from None
    except NotLeaderError as exc:
        raise ApplicationError(Code.NOT_LEADER, not_leader_message(exc.hint)) from None


async def call_log_or_forward(
    node: ReplicaNode,
    method: str,
    args: dict[str, Any],
    op: dict[str, Any],
    *,
    read: bool = False,
) -> dict[str, Any]:
    """`call_log` on this replica if it leads, else the leader's answer to `method(args)`.

    Raises:
        ApplicationError: as `call_log`, or the leader's typed error.
    """
    rsm = node.require_writable()
    try:
        return await call_log(rsm, op, read=read)
    except ApplicationError as exc:
        if exc.code != Code.NOT_LEADER or args.get(REDIRECT) is True:
            raise
        refusal = exc
    peer = rsm.peer
    unreachable: int | None = None
    for _ in range(FORWARD_ATTEMPTS):
        hint = await _leader(node, rsm, unreachable)
        if peer.leading.value:
            return await call_log(rsm, op, read=read)
        if hint is None or node.pool is None:
            raise refusal
        try:
            return await node.pool.call(
                node.settings.peers[hint],
                method,
                {**args, REDIRECT: True},
                deadline_s=FORWARD_DEADLINE_S,
            )
        except RpcRemoteError as exc:
            if exc.code != Code.NOT_LEADER:
                raise ApplicationError(exc.code, exc.message) from None
            unreachable = hint  # it stepped down meanwhile: wait for the next leader
        except NetError:
            # Its peers may still hear it (a one-way partition): run for leader ourselves.
            unreachable = hint
            node.campaign_at_most_every(CAMPAIGN_INTERVAL_S)
    raise refusal


async def _leader(
    node: ReplicaNode, rsm: ReplicatedStateMachine, not_this: int | None
) -> int | None:
    """The leader to forward to (not `not_this`), waiting up to `LEADER_WAIT_S` for one;
    None if this replica leads or none is known."""
    peer = rsm.peer
    me = node.settings.me
    with trio.move_on_after(LEADER_WAIT_S):
        while True:
            hint = peer.leader_hint()
            if peer.leading.value:
                return None
            if hint is not None and hint not in (me, not_this):
                return hint
            await trio.sleep(LEADER_POLL_S)
    return None
