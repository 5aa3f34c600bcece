"""Who may call what: the three roles a connection can authenticate as.

- ``peer``: another server of the cluster (Paxos, state transfer, shard hand-off, polls).
- ``operator``: admin tools, the supervisor, status, fault injection.
- ``client``: reads and writes of keys, and configuration queries.

A role is bound to the connection by the handshake; every method a server registers names
the roles it serves, and a call from any other role is refused before its handler runs.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    PEER = "peer"
    OPERATOR = "operator"
    CLIENT = "client"


PEERS: frozenset[Role] = frozenset({Role.PEER})
OPERATORS: frozenset[Role] = frozenset({Role.OPERATOR})
PEERS_AND_OPERATORS: frozenset[Role] = frozenset({Role.PEER, Role.OPERATOR})
CLIENTS: frozenset[Role] = frozenset({Role.CLIENT, Role.OPERATOR})
"""Client methods are open to operators too (an operator may read and write keys)."""
EVERYONE: frozenset[Role] = frozenset(Role)


def parse_role(text: str) -> Role | None:
    """The role named `text`, or None for any other string."""
    try:
        return Role(text)
    except ValueError:
        return None
