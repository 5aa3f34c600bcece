"""Paxos errors, split by cause."""

from __future__ import annotations


class PaxosError(Exception):
    """Base of every error raised by `diskv_trio.paxos`."""


class PaxosProtocolError(PaxosError):
    """A peer (or a journal record) broke the protocol: a malformed message or record."""


class PaxosUnreachable(PaxosError):
    """A transport could not deliver a call or lost its reply; the peer may be down or cut off."""


class PaxosForgotten(PaxosError):
    """The instance is below `min()`: every peer has called `done()` on it and it was dropped."""


class PaxosStorageError(PaxosError):
    """The journal under the peer failed; the peer cannot go on safely and stops."""


class PaxosNotLeader(PaxosError):
    """Only the leader may do this (`propose`, `read`); `hint` is the leader this peer
    believes in (a peer index), or None."""

    def __init__(self, hint: int | None) -> None:
        super().__init__(
            "not the leader" + (f"; the leader is peer {hint}" if hint is not None else "")
        )
        self.hint = hint
