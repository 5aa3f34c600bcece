"""RPC over Trio streams: framing, hello, multiplexed calls, built-in fault injection.

A frame is a u32 big-endian length and a CBOR map. Each connection starts with a handshake
that binds one of three roles (peer, operator, client) to it, proven by an HMAC over both
sides' nonces with that role's key; each method is served to the roles it names. Optional
TLS (`load_tls`, carried in `Credentials.tls`) wraps every connection before the hello. Requests
carry ids so one connection carries many calls at once. See DESIGN.md, section 2.
"""

from ._address import Address, TcpAddress, UnixAddress, parse_address
from ._credentials import (
    CREDENTIALS_ENV,
    Credentials,
    CredentialsError,
    create_credentials,
    load_credentials,
)
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
from ._fd_limit import inbound_connections_max
from ._handler import CallContext, Handler
from ._limits import FRAME_BYTES_MAX, PROTOCOL_VERSION, WIRE_DEPTH_MAX
from ._pool import RpcPool, open_rpc_pool
from ._protocol import Identity
from ._roles import CLIENTS, EVERYONE, OPERATORS, PEERS, PEERS_AND_OPERATORS, Role
from ._server import RpcServer
from ._tls import (
    CA_FILE_NAME,
    CERT_FILE_NAME,
    CODE_TLS,
    KEY_FILE_NAME,
    TLS_DIR_ENV,
    Tls,
    TlsError,
    client_context,
    load_tls,
    tls_for_client_context,
)
from ._transport import SOCKETS, Listening, SocketTransport, Transport

__all__ = [
    "Address",
    "CLIENTS",
    "CREDENTIALS_ENV",
    "EVERYONE",
    "OPERATORS",
    "PEERS",
    "PEERS_AND_OPERATORS",
    "Credentials",
    "CredentialsError",
    "Role",
    "create_credentials",
    "load_credentials",
    "FRAME_BYTES_MAX",
    "PROTOCOL_VERSION",
    "WIRE_DEPTH_MAX",
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
    "CA_FILE_NAME",
    "CERT_FILE_NAME",
    "CODE_TLS",
    "KEY_FILE_NAME",
    "TLS_DIR_ENV",
    "Tls",
    "TlsError",
    "load_tls",
    "tls_for_client_context",
    "client_context",
    "inbound_connections_max",
    "SOCKETS",
    "Listening",
    "SocketTransport",
    "Transport",
]
