"""Paxos with a durable acceptor that survives restarts and disk loss (DESIGN.md section 4).

`PaxosPeer` is the Trio peer a server embeds; `open_paxos_node` runs one on its own
journal and RPC server. The protocol's rules live in the sans-I/O `PaxosCore`.
"""

from ._ballot import Ballot
from ._core import Fate, PaxosCore, PaxosRestoredState, Ready
from ._errors import (
    PaxosError,
    PaxosForgotten,
    PaxosProtocolError,
    PaxosStorageError,
    PaxosUnreachable,
)
from ._limits import INSTANCE_AHEAD_MAX
from ._node import JournalStorage, PaxosNode, PoolTransport, open_paxos_node
from ._peer import MemoryStorage, PaxosPeer, PaxosStorage, PaxosTransport

__all__ = [
    "INSTANCE_AHEAD_MAX",
    "Ballot",
    "Fate",
    "JournalStorage",
    "MemoryStorage",
    "PaxosCore",
    "PaxosError",
    "PaxosForgotten",
    "PaxosNode",
    "PaxosPeer",
    "PaxosProtocolError",
    "PaxosRestoredState",
    "PaxosStorage",
    "PaxosStorageError",
    "PaxosTransport",
    "PaxosUnreachable",
    "PoolTransport",
    "Ready",
    "open_paxos_node",
]
