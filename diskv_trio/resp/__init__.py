"""The Redis-protocol gateway: RESP2/RESP3 in, calls on the cluster through the Trio client.

`RespGateway(kv, password=...).serve(host, port)` serves until cancelled. The protocol
decisions are sans-I/O (`RequestReader`, `Session`, the store plans, `encode`); the Trio
driver in `_server` only moves bytes and runs plans.
"""

from ._command_table import COMMANDS, CommandSpec
from ._errors import RespProtocolError
from ._info import GatewayFacts, GatewayStats
from ._limits import (
    APPEND_VALUE_BYTES_MAX,
    ARGUMENTS_MAX,
    BULK_BYTES_MAX,
    CAS_ATTEMPTS_MAX,
    COMMAND_BYTES_MAX,
    COMMAND_DEADLINE_S,
    COMMAND_STALL_S,
    CONNECTIONS_MAX,
    IDLE_S,
    PIPELINE_COMMANDS_MAX,
)
from ._plans import KvCall, KvCas, KvDelete, KvGet, KvPut, Plan
from ._reader import Parsed, RequestReader
from ._replies import (
    NULL,
    RESP2,
    RESP3,
    Array,
    Bulk,
    Error,
    Integer,
    Map,
    Null,
    Reply,
    Simple,
    encode,
)
from ._server import RespGateway
from ._session import Answer, Run, Session

__all__ = [
    "APPEND_VALUE_BYTES_MAX",
    "ARGUMENTS_MAX",
    "BULK_BYTES_MAX",
    "CAS_ATTEMPTS_MAX",
    "COMMANDS",
    "COMMAND_BYTES_MAX",
    "COMMAND_DEADLINE_S",
    "COMMAND_STALL_S",
    "CONNECTIONS_MAX",
    "IDLE_S",
    "NULL",
    "PIPELINE_COMMANDS_MAX",
    "RESP2",
    "RESP3",
    "Answer",
    "Array",
    "Bulk",
    "CommandSpec",
    "Error",
    "GatewayFacts",
    "GatewayStats",
    "Integer",
    "KvCall",
    "KvCas",
    "KvDelete",
    "KvGet",
    "KvPut",
    "Map",
    "Null",
    "Parsed",
    "Plan",
    "Reply",
    "RequestReader",
    "RespGateway",
    "RespProtocolError",
    "Run",
    "Session",
    "Simple",
    "encode",
]
