"""Shardkv: the replicated key/value state of one replica group and its server.

The sans-I/O core is `ShardKVState` (with `key_to_shard`); `shardkv_node` builds the Trio
server around it and is imported on first use, so that clients, which need only
`key_to_shard`, do not load the Paxos and journal stack.
"""

from typing import TYPE_CHECKING, Any

from ._keys import key_to_shard
from ._state import (
    ERR_BAD_OP,
    ERR_NOT_READY,
    ERR_STALE,
    ERR_WRONG_GROUP,
    OK,
    ShardDrop,
    ShardKVState,
    ShardPull,
)

if TYPE_CHECKING:
    from ._server import shardkv_node

__all__ = [
    "ERR_BAD_OP",
    "ERR_NOT_READY",
    "ERR_STALE",
    "ERR_WRONG_GROUP",
    "OK",
    "ShardDrop",
    "ShardKVState",
    "ShardPull",
    "key_to_shard",
    "shardkv_node",
]


def __getattr__(name: str) -> Any:
    if name == "shardkv_node":
        from ._server import shardkv_node

        return shardkv_node
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
