"""The key/value protocol, the one module both the client and the servers import.

It holds what the two sides must agree on and nothing that needs Trio, Paxos or the journal:
the shard function (`Sharding`), the typed client ops and their validating decoder
(`decode_op`), the reply codes (`Code`), the method names and the limits. A client imports
this package, never the server packages.
"""

from ._codes import (
    KV_DROP_SHARD,
    KV_OP,
    KV_PULL_SHARD,
    REDIRECT,
    REJECTIONS,
    SM_JOIN,
    SM_LEAVE,
    SM_MOVE,
    SM_QUERY,
    SM_QUERY_APPLIED,
    Code,
    leader_hint,
    not_leader_message,
)
from ._limits import (
    CAS_VALUES_BYTES_MAX,
    CLIENT_CHARS_MAX,
    KEY_BYTES_MAX,
    NUMBER_MAX,
    OP_BYTES_MAX,
    SHARD_COUNT_MAX,
    VALUE_BYTES_MAX,
)
from ._ops import (
    OP_NAMES,
    Append,
    Cas,
    ClientOp,
    Delete,
    Get,
    Put,
    WriteOp,
    as_bytes,
    check_client,
    check_number,
    decode_op,
    is_int,
)
from ._replies import flag_result, get_result
from ._sharding import (
    COURSE_SHARD_COUNT,
    COURSE_SHARDING,
    DEFAULT_SHARD_COUNT,
    DEFAULT_SHARDING,
    SCHEMES,
    Sharding,
)

__all__ = [
    "REDIRECT",
    "leader_hint",
    "not_leader_message",
    "CAS_VALUES_BYTES_MAX",
    "CLIENT_CHARS_MAX",
    "COURSE_SHARDING",
    "COURSE_SHARD_COUNT",
    "DEFAULT_SHARDING",
    "DEFAULT_SHARD_COUNT",
    "KEY_BYTES_MAX",
    "KV_DROP_SHARD",
    "KV_OP",
    "KV_PULL_SHARD",
    "NUMBER_MAX",
    "OP_BYTES_MAX",
    "OP_NAMES",
    "REJECTIONS",
    "SCHEMES",
    "SHARD_COUNT_MAX",
    "SM_JOIN",
    "SM_LEAVE",
    "SM_MOVE",
    "SM_QUERY",
    "SM_QUERY_APPLIED",
    "VALUE_BYTES_MAX",
    "Append",
    "Cas",
    "ClientOp",
    "Code",
    "Delete",
    "Get",
    "Put",
    "Sharding",
    "WriteOp",
    "as_bytes",
    "check_client",
    "check_number",
    "decode_op",
    "flag_result",
    "get_result",
    "is_int",
]
