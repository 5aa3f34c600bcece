"""Shardkv: the replicated key/value state of one replica group and its server.

The sans-I/O core is `ShardKVState`; `shardkv_node` builds the Trio server around it. Clients
never import this package: what they share with it is in `diskv_trio.kvproto`.
"""

from ._server import shardkv_node
from ._state import (
    ERR_BAD_OP,
    ERR_NO_KEY,
    ERR_NOT_READY,
    ERR_STALE,
    ERR_WRONG_GROUP,
    OK,
    ShardDrop,
    ShardKVState,
    ShardPull,
)

__all__ = [
    "ERR_BAD_OP",
    "ERR_NOT_READY",
    "ERR_NO_KEY",
    "ERR_STALE",
    "ERR_WRONG_GROUP",
    "OK",
    "ShardDrop",
    "ShardKVState",
    "ShardPull",
    "shardkv_node",
]
