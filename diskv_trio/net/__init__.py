"""RPC over Trio streams: framing, hello, multiplexed calls, built-in fault injection.

A frame is a u32 big-endian length and a CBOR map. Each connection starts with a hello
(version, cluster, role, id, optional token); requests carry ids so one connection carries
many calls at once. See DESIGN.md, section 2.
"""

from ._address import TcpAddress, UnixAddress, parse_address
from ._errors import (
    ApplicationError,
    HandshakeError,
    NetError,
    ProtocolError,
    RpcRemoteError,
    RpcTimeout,
    RpcUnavailable,
)
from ._faults import Faults
from ._limits import FRAME_BYTES_MAX, PROTOCOL_VERSION
from ._pool import RpcPool, open_rpc_pool
from ._protocol import Identity
from ._server import CallContext, Handler, RpcServer

__all__ = [
    "FRAME_BYTES_MAX",
    "PROTOCOL_VERSION",
    "ApplicationError",
    "CallContext",
    "Faults",
    "HandshakeError",
    "Handler",
    "Identity",
    "NetError",
    "ProtocolError",
    "RpcPool",
    "RpcRemoteError",
    "RpcServer",
    "RpcTimeout",
    "RpcUnavailable",
    "TcpAddress",
    "UnixAddress",
    "open_rpc_pool",
    "parse_address",
]
