"""Shardmaster: numbered configs assigning shards to replica groups.

The sans-I/O core (`Config`, `rebalance`, `ShardmasterState`) and the Trio server and clerk
built around it. `shardmaster_node` is imported on first use, so that clients, which need
only `Config` and the clerk, do not load the Paxos and journal stack.
"""

from typing import TYPE_CHECKING, Any

from ._clerk import ShardmasterClerk, ShardmasterError
from ._config import (
    ADDRESS_CHARS_MAX,
    CONFIG_NUM_MAX,
    GID_MAX,
    GROUP_SERVERS_MAX,
    GROUPS_MAX,
    SHARD_COUNT,
    Config,
    check_gid,
    check_servers,
    is_int,
)
from ._ops import (
    JoinOp,
    LeaveOp,
    MoveOp,
    QueryOp,
    ShardmasterOp,
    build_op,
)
from ._rebalance import moved_count, rebalance
from ._state import ERROR_BAD_OP, ERROR_UNKNOWN_GROUP, ShardmasterState

if TYPE_CHECKING:
    from ._server import shardmaster_node

__all__ = [
    "ADDRESS_CHARS_MAX",
    "CONFIG_NUM_MAX",
    "ERROR_BAD_OP",
    "ERROR_UNKNOWN_GROUP",
    "GID_MAX",
    "GROUPS_MAX",
    "GROUP_SERVERS_MAX",
    "SHARD_COUNT",
    "Config",
    "JoinOp",
    "LeaveOp",
    "MoveOp",
    "QueryOp",
    "ShardmasterClerk",
    "ShardmasterError",
    "ShardmasterOp",
    "ShardmasterState",
    "build_op",
    "check_gid",
    "check_servers",
    "is_int",
    "moved_count",
    "rebalance",
    "shardmaster_node",
]


def __getattr__(name: str) -> Any:
    if name == "shardmaster_node":
        from ._server import shardmaster_node

        return shardmaster_node
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
