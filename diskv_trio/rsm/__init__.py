"""The replicated-state-machine server shell shared by the shardmaster and shardkv servers."""

from ._alarm import ALARM_NOSPACE, NOSPACE_RETRY_S
from ._calls import call_log, call_log_or_forward
from ._host import SYSTEM_HOST, Disk, Host, LocalDisk
from ._identity import IDENTITY_FILE_NAME, IdentityMismatchError, ServerIdentity
from ._node import NodeSettings, NoSpaceError, NotServingError, ReplicaNode, open_directory
from ._paxos_wiring import PaxosServer, open_paxos_server
from ._rsm import NotLeaderError, ReplicatedStateMachine, ServerBusyError, StateMachine
from ._storage import ServerStorage, StorageFormatError

__all__ = [
    "ALARM_NOSPACE",
    "NOSPACE_RETRY_S",
    "SYSTEM_HOST",
    "Disk",
    "Host",
    "LocalDisk",
    "IDENTITY_FILE_NAME",
    "IdentityMismatchError",
    "NoSpaceError",
    "NodeSettings",
    "NotLeaderError",
    "NotServingError",
    "PaxosServer",
    "ReplicaNode",
    "ReplicatedStateMachine",
    "ServerBusyError",
    "ServerIdentity",
    "ServerStorage",
    "StateMachine",
    "StorageFormatError",
    "call_log",
    "call_log_or_forward",
    "open_directory",
    "open_paxos_server",
]
