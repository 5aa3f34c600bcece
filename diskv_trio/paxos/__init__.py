"""Paxos with a durable acceptor that survives restarts and disk loss (DESIGN.md section 4).

`PaxosPeer` is the Trio peer a server embeds; it reaches its journal through
`PaxosStorage` and the other peers through `PaxosTransport`, both implemented by the
server's wiring (`diskv_trio.rsm`): this package imports neither the journal nor the RPC
layer. The protocol's rules live in the sans-I/O `PaxosCore`; its journal records are the
typed `PaxosRecord`s.
"""

from ._ballot import Ballot
from ._core import PaxosCore
from ._errors import (
    PaxosError,
    PaxosForgotten,
    PaxosNotLeader,
    PaxosProtocolError,
    PaxosStorageError,
    PaxosUnreachable,
)
from ._limits import INSTANCE_AHEAD_MAX
from ._peer import Handler, PaxosPeer
from ._ready import Fate, Ready
from ._records import (
    AcceptRecord,
    DecideRecord,
    EpochRecord,
    FloorRecord,
    MinRecord,
    PaxosRecord,
    PaxosRestoredState,
    PromiseRecord,
    RecoveringRecord,
    record_from_wire,
    restore_state,
)
from ._sender import PEER_ROLE
from ._storage import MemoryStorage, PaxosStorage, PaxosTransport

__all__ = [
    "INSTANCE_AHEAD_MAX",
    "PEER_ROLE",
    "AcceptRecord",
    "Ballot",
    "DecideRecord",
    "EpochRecord",
    "Fate",
    "FloorRecord",
    "Handler",
    "MemoryStorage",
    "MinRecord",
    "PaxosCore",
    "PaxosError",
    "PaxosForgotten",
    "PaxosNotLeader",
    "PaxosPeer",
    "PaxosProtocolError",
    "PaxosRecord",
    "PaxosRestoredState",
    "PaxosStorage",
    "PaxosStorageError",
    "PaxosTransport",
    "PaxosUnreachable",
    "PromiseRecord",
    "Ready",
    "RecoveringRecord",
    "record_from_wire",
    "restore_state",
]
