"""Errors of the RPC layer, split by cause.

The caller of `RpcPool.call` sees exactly one of:

- `RpcUnavailable`: the transport failed (no connection, connection broken, request
  dropped, reply lost, peer cut or deaf). The call may or may not have executed.
- `RpcTimeout`: the call's deadline passed; a kind of `RpcUnavailable` (outcome unknown).
- `RpcRemoteError`: the server ran the request (or looked at it) and answered with a typed
  error, e.g. an `ApplicationError` raised by the handler, ``internal`` or ``unknown-method``.
- `HandshakeError`: the server refused our hello (wrong version, key or cluster), or could
  not prove it holds our key. This is
  a configuration error and is not retried silently.

`ProtocolError` is raised where a peer's bytes break the protocol; `ApplicationError` is
raised by handlers to send a typed error back to the caller.
"""

from __future__ import annotations


class NetError(Exception):
    """Base class of every error raised by `diskv_trio.net`."""


class RpcUnavailable(NetError):
    """The transport failed; the remote call may or may not have executed."""


class RpcTimeout(RpcUnavailable):
    """The call's deadline passed before a reply came; the outcome is unknown."""


class RpcRemoteError(NetError):
    """The server answered the call with a typed error.

    Attributes:
        code: short machine-readable reason, e.g. ``"internal"``, ``"unknown-method"`` or
            the code of the handler's `ApplicationError`.
        message: human-readable detail.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolError(NetError):
    """A peer sent bytes that break the wire protocol (bad frame, bad CBOR, bad fields)."""


class HandshakeError(NetError):
    """The server refused the hello (``version``, ``auth``, ``cluster``, ``busy``), or the hello failed.

    Attributes:
        code: the refusal code sent by the server.
        message: human-readable detail.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ApplicationError(Exception):
    """Raised by a handler to send a typed error; the caller gets `RpcRemoteError`.

    It is not a `NetError`: it travels from handler to server, never out of the pool.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
