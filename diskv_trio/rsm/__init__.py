"""The replicated-state-machine server shell shared by the shardmaster and shardkv servers."""

from ._identity import IDENTITY_FILE_NAME, IdentityMismatchError, ServerIdentity
from ._node import NodeSettings, NotServingError, ReplicaNode, open_directory
from ._rsm import ReplicatedStateMachine, ServerBusyError, StateMachine
from ._storage import ServerStorage, StorageFormatError

__all__ = [
    "IDENTITY_FILE_NAME",
    "IdentityMismatchError",
    "NodeSettings",
    "NotServingError",
    "ReplicaNode",
    "ReplicatedStateMachine",
    "ServerBusyError",
    "ServerIdentity",
    "ServerStorage",
    "StateMachine",
    "StorageFormatError",
    "open_directory",
]
