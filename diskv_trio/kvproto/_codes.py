"""Reply codes and method names of the key/value protocol, shared by client and servers.

Rules kept here:
- Every reply of a shardkv or shardmaster state machine is a map with ``"err"``, one of
  `Code`; a server turns any code but ``OK`` and ``ErrNoKey`` into an RPC error with that
  code, and the client decides what to do by comparing with `Code`, never a string literal.
- ``ErrNoKey`` is a successful answer: the key is absent (as opposed to an empty value).
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """What a key/value or configuration request came to."""

    OK = "OK"
    """Applied; the reply carries the op's result."""
    NO_KEY = "ErrNoKey"
    """A get of a key that is absent (never written, or deleted)."""
    WRONG_GROUP = "ErrWrongGroup"
    """The key's shard is not served by this group at this point of its log: ask again."""
    STALE = "ErrStale"
    """A reconfiguration or install for a config already passed."""
    NOT_READY = "ErrNotReady"
    """A reconfiguration or install too early, or a shard hand-off not there yet: retry."""
    BAD_OP = "ErrBadOp"
    """A log entry's op did not parse when applied (nothing changed)."""
    BAD_REQUEST = "ErrBadRequest"
    """The caller's arguments do not make a valid op; nothing was proposed."""
    UNKNOWN_GROUP = "ErrUnknownGroup"
    """A shardmaster move names a group that is not joined."""
    NOT_LEADER = "ErrNotLeader"
    """Only the group's leader takes ops; the message names the leader (`leader_hint`)."""
    BUSY = "busy"
    """The server has too many proposals pending: another replica, or later."""
    FORBIDDEN = "forbidden"
    """The caller's role may not call this method."""
    INTERNAL = "internal"
    """A server bug or a server that is stopping: another replica."""


REJECTIONS = frozenset({Code.BAD_REQUEST, Code.BAD_OP, Code.FORBIDDEN})
"""Codes a retry cannot fix: the client raises instead of asking another replica."""

KV_OP = "kv.op"
"""A client's get, put, append, delete or compare-and-set (clients)."""
KV_PULL_SHARD = "kv.pull_shard"
"""A shard's data and duplicate table, handed to its next owner (peers)."""
KV_DROP_SHARD = "kv.drop_shard"
"""Forget a shard the next owner has installed (peers)."""
SM_JOIN = "sm.join"
SM_LEAVE = "sm.leave"
SM_MOVE = "sm.move"
SM_QUERY = "sm.query"
"""A configuration, answered at its log position (everyone)."""
SM_QUERY_APPLIED = "sm.query_applied"
"""A configuration from a replica's applied state, without the log (peers and operators)."""


REDIRECT = "redirect"
"""A request field: when true, a replica that is not the leader answers ``ErrNotLeader``
(naming the leader) instead of forwarding the request to it. The client sets it and goes
to the leader itself; callers that know one replica only leave it out."""

_LEADER_PREFIX = "leader: replica "


def not_leader_message(hint: int | None) -> str:
    """The message of a ``ErrNotLeader`` error: the replica index believed to lead, if any."""
    return "leader unknown" if hint is None else f"{_LEADER_PREFIX}{hint}"


def leader_hint(message: str, replicas: int) -> int | None:
    """The replica index a ``ErrNotLeader`` message names, if it is one of `replicas`."""
    if not message.startswith(_LEADER_PREFIX):
        return None
    digits = message[len(_LEADER_PREFIX) :]
    if not digits.isdigit() or len(digits) > 4:
        return None
    index = int(digits)
    return index if index < replicas else None
