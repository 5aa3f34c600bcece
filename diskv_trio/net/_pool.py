"""The outbound side: one multiplexed connection per address, shared by concurrent calls.

Rules kept here:

- A connection is opened lazily by the first call to its address, by a task of the pool
  (so a caller's deadline never interrupts a connect half-way), and starts with the
  handshake: the server's challenge, our hello with a proof made with our role's key, and
  the server's reply, whose proof we check whenever we hold a key (a server that cannot
  prove it holds the cluster's key is refused).
- Replies are matched to calls by request id. A broken connection fails every call on it
  with `RpcUnavailable` and is forgotten; a later call opens a new one.
- After a connection to an address fails or breaks, calls to it fail at once with
  `RpcUnavailable` for a backoff delay (10 ms doubling to 1 s), as a call to a dead server
  in the course fails at once.
- One writer task owns each stream's send side, so a cancelled caller never leaves half a
  frame on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from diskv_trio import _entropy

from . import _auth
from ._address import Address, parse_address
from ._credentials import Credentials
from ._errors import (
    HandshakeError,
    NetError,
    ProtocolError,
    RpcRemoteError,
    RpcTimeout,
    RpcUnavailable,
)
from ._faults import Faults
from ._limits import (
    CALLS_IN_FLIGHT_MAX,
    CONNECT_TIMEOUT_S,
    FRAME_BYTES_MAX,
    HELLO_FRAME_BYTES_MAX,
    NONCE_BYTES,
    RECONNECT_DELAY_INITIAL_S,
    RECONNECT_DELAY_MAX_S,
)
from ._protocol import (
    CODE_AUTH,
    CODE_BUSY,
    CODE_CLUSTER,
    CODE_UNAVAILABLE,
    ConnectionError_,
    FrameDecoder,
    Identity,
    Reply,
    encode_frame,
    hello_message,
    parse_challenge,
    parse_hello_reply,
    parse_reply,
    request_message,
)
from ._streams import TRANSPORT_ERRORS, open_stream, receive_message, write_frames
from ._tls import CODE_TLS, tls_failure
from ._transport import SOCKETS, Transport

logger = logging.getLogger("diskv.net")

ADMIN_PREFIX = "admin."
"""Admin calls are never subject to fault injection, cut included."""

FailureFactory = Callable[[], NetError]
"""Makes a fresh exception for each caller (never one instance raised in many tasks)."""


def _unavailable(text: str) -> FailureFactory:
    return lambda: RpcUnavailable(text)


class _PendingCall:
    __slots__ = ("done", "reply", "failure")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: Reply | None = None
        self.failure: FailureFactory | None = None


class _Connection:
    """State of one connection, shared by the callers using it and the task running it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.ready = trio.Event()
        self.remote: Identity | None = None
        self.failure: FailureFactory | None = None
        self.pending: dict[int, _PendingCall] = {}
        self.next_request_id = 1
        self.frames_in, self.frames_out = trio.open_memory_channel[bytes](CALLS_IN_FLIGHT_MAX)

    def fail(self, failure: FailureFactory) -> None:
        """Fail every call on this connection, now and later. Idempotent."""
        if self.failure is not None:
            return
        self.failure = failure
        self.ready.set()
        for pending in self.pending.values():
            pending.failure = failure
            pending.done.set()
        self.pending.clear()


@dataclass(slots=True)
class _Backoff:
    delay_s: float
    retry_at: float
    failure: FailureFactory


class RpcPool:
    """Calls to many servers. Create with `open_rpc_pool`."""

    def __init__(
        self,
        identity: Identity,
        nursery: trio.Nursery,
        *,
        credentials: Credentials | None,
        faults: Faults | None,
        transport: Transport = SOCKETS,
    ) -> None:
        self.identity = identity
        self._transport = transport
        self.faults = faults if faults is not None else Faults()
        self._key = credentials.key(identity.role) if credentials is not None else None
        self._tls = credentials.tls if credentials is not None else None
        self._nursery = nursery
        self._addresses: dict[str, tuple[str, Address]] = {}
        self._connections: dict[str, _Connection] = {}
        self._backoffs: dict[str, _Backoff] = {}
        self._closed = False

    async def call(
        self, address: str, method: str, args: dict[str, Any], *, deadline_s: float
    ) -> dict[str, Any]:
        """Call `method` with `args` on the server at `address` and return its result.

        Args:
            address: ``unix:/path`` or ``HOST:PORT``.
            deadline_s: bounds the whole call, connecting included.

        Raises:
            RpcTimeout: no reply within `deadline_s` (the call may have executed).
            RpcUnavailable: no connection, connection broken, request dropped or reply lost,
                peer cut, server deaf, or backing off after a recent failure.
            RpcRemoteError: the server answered with a typed error.
            HandshakeError: the server refused our hello (version, auth, cluster), or could
                not prove it holds our role's key. A busy server is `RpcUnavailable`.
            ValueError: a bad address, or args too large for one frame.
        """
        key, parsed = self._resolve(address)
        with trio.move_on_after(deadline_s):
            return await self._call(key, parsed, method, args)
        raise RpcTimeout(f"{method} to {key}: no reply within {deadline_s} s")

    def _resolve(self, address: str) -> tuple[str, Address]:
        known = self._addresses.get(address)
        if known is None:
            parsed = parse_address(address)
            known = (str(parsed), parsed)
            self._addresses[address] = known
        return known

    async def _call(
        self, key: str, address: Address, method: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        connection = await self._connection(key, address)
        assert connection.remote is not None
        if connection.remote.node_id in self.faults.cut and not method.startswith(ADMIN_PREFIX):
            raise RpcUnavailable(f"{method} to {key}: node {connection.remote.node_id} is cut off")
        request_id = connection.next_request_id
        connection.next_request_id += 1
        frame = encode_frame(request_message(request_id, method, args))
        if connection.failure is not None:
            raise connection.failure()
        pending = _PendingCall()
        connection.pending[request_id] = pending
        try:
            try:
                await connection.frames_in.send(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                connection.fail(_unavailable(f"connection to {key} lost"))
            await pending.done.wait()
        finally:
            connection.pending.pop(request_id, None)
        if pending.failure is not None:
            raise pending.failure()
        reply = pending.reply
        assert reply is not None
        if reply.error is not None:
            code, text = reply.error
            if code == CODE_UNAVAILABLE:
                raise RpcUnavailable(f"{method} to {key}: {text}")
            raise RpcRemoteError(code, text)
        assert reply.result is not None
        return reply.result

    async def _connection(self, key: str, address: Address) -> _Connection:
        """The ready connection to `key`, opening one if needed."""
        if self._closed:
            raise RpcUnavailable("the pool is closed")
        connection = self._connections.get(key)
        if connection is None:
            backoff = self._backoffs.get(key)
            if backoff is not None and trio.current_time() < backoff.retry_at:
                raise backoff.failure()
            connection = _Connection(key)
            self._connections[key] = connection
            self._nursery.start_soon(self._run_connection, key, address, connection)
        if not connection.ready.is_set():
            await connection.ready.wait()
        if connection.failure is not None:
            raise connection.failure()
        return connection

    # -- connection task ------------------------------------------------------------------

    async def _run_connection(self, key: str, address: Address, connection: _Connection) -> None:
        stream: trio.abc.Stream | None = None
        try:
            decoder = FrameDecoder(HELLO_FRAME_BYTES_MAX)
            try:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    stream = await open_stream(address, self._tls, self._transport)
                    connection.remote = await self._hello(stream, decoder)
            except HandshakeError as exc:
                code, text = exc.code, exc.message
                if code == CODE_BUSY:
                    # A full server is a transient condition, like a refused connect: the
                    # caller tries another server or retries, never treats it as fatal.
                    busy = f"{key} is busy: {text}"
                    self._connection_failed(key, connection, _unavailable(busy), established=False)
                    return
                logger.warning("hello to %s refused: %s", key, exc)
                self._connection_failed(
                    key, connection, lambda: HandshakeError(code, text), established=False
                )
                return
            except (*TRANSPORT_ERRORS, trio.TooSlowError, ProtocolError, RpcUnavailable) as exc:
                # RpcUnavailable: a TLS server answered in plain text (see `_tls`).
                refused = tls_failure(exc, key)  # TLS 1.3: our certificate is judged here
                if isinstance(refused, HandshakeError):
                    logger.warning("hello to %s refused: %s", key, refused)
                    tls_text = refused.message
                    failure = lambda: HandshakeError(CODE_TLS, tls_text)  # noqa: E731
                    self._connection_failed(key, connection, failure, established=False)
                    return
                text = f"cannot connect to {key}: {refused or exc or type(exc).__name__}"
                self._connection_failed(key, connection, _unavailable(text), established=False)
                return
            self._backoffs.pop(key, None)
            connection.ready.set()
            decoder.frame_bytes_max = FRAME_BYTES_MAX
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, stream, connection, nursery.cancel_scope)
                reason = await self._read_replies(stream, decoder, connection)
                nursery.cancel_scope.cancel()
            self._connection_failed(key, connection, _unavailable(reason), established=True)
        finally:
            # Also reached when the pool closes: nobody may wait forever.
            connection.fail(_unavailable(f"connection to {key} closed"))
            if self._connections.get(key) is connection:
                del self._connections[key]
            if stream is not None:
                await trio.aclose_forcefully(stream)

    def _connection_failed(
        self, key: str, connection: _Connection, failure: FailureFactory, *, established: bool
    ) -> None:
        """Fail the connection's calls, forget it and start (or extend) the backoff."""
        connection.fail(failure)
        if self._connections.get(key) is connection:
            del self._connections[key]
        previous = self._backoffs.get(key)
        if established or previous is None:
            delay_s = RECONNECT_DELAY_INITIAL_S
        else:
            delay_s = min(previous.delay_s * 2, RECONNECT_DELAY_MAX_S)
        self._backoffs[key] = _Backoff(delay_s, trio.current_time() + delay_s, failure)
        logger.debug("connection to %s failed; next attempt in %.3f s", key, delay_s)

    async def _hello(self, stream: trio.abc.Stream, decoder: FrameDecoder) -> Identity:
        challenge = await receive_message(stream, decoder)
        if challenge is None:
            raise ProtocolError("server closed the connection before its challenge")
        server_nonce = parse_challenge(challenge)
        if isinstance(server_nonce, ConnectionError_):
            raise HandshakeError(server_nonce.code, server_nonce.message)
        me = self.identity
        nonce = _entropy.token_bytes(NONCE_BYTES)
        signed = _auth.transcript(me.cluster, me.role, me.node_id, server_nonce, nonce)
        key = self._key
        proof = _auth.prove(key, _auth.CALLER_SIDE, signed) if key is not None else None
        await stream.send_all(encode_frame(hello_message(me, nonce, proof)))
        message = await receive_message(stream, decoder)
        if message is None:
            raise ProtocolError("server closed the connection during the hello")
        reply = parse_hello_reply(message)
        if isinstance(reply, ConnectionError_):
            raise HandshakeError(reply.code, reply.message)
        if reply.identity.cluster != me.cluster:
            raise HandshakeError(
                CODE_CLUSTER,
                f"server is in cluster {reply.identity.cluster!r}, we are in {me.cluster!r}",
            )
        if key is not None and not _auth.verify(key, _auth.SERVER_SIDE, signed, reply.proof):
            raise HandshakeError(
                CODE_AUTH, f"server {reply.identity.node_id!r} did not prove it holds the cluster's key"
            )
        return reply.identity

    async def _write(
        self, stream: trio.abc.Stream, connection: _Connection, scope: trio.CancelScope
    ) -> None:
        try:
            await write_frames(stream, connection.frames_out)
        except TRANSPORT_ERRORS as exc:
            connection.fail(_unavailable(f"connection to {connection.address} broken: {exc}"))
            scope.cancel()

    async def _read_replies(
        self, stream: trio.abc.Stream, decoder: FrameDecoder, connection: _Connection
    ) -> str:
        """Deliver replies until the connection ends; return why it ended."""
        try:
            while True:
                message = await receive_message(stream, decoder)
                if message is None:
                    return f"connection to {connection.address} closed by the server"
                reply = parse_reply(message)
                if isinstance(reply, ConnectionError_):
                    logger.warning(
                        "server %s closed the connection: %s: %s",
                        connection.address,
                        reply.code,
                        reply.message,
                    )
                    return f"server {connection.address} closed the connection: {reply.code}: {reply.message}"
                pending = connection.pending.pop(reply.request_id, None)
                if pending is not None:  # else the caller gave up already
                    pending.reply = reply
                    pending.done.set()
        except ProtocolError as exc:
            logger.warning("closing connection to %s: %s", connection.address, exc)
            return f"protocol error from {connection.address}: {exc}"
        except TRANSPORT_ERRORS as exc:
            return f"connection to {connection.address} broken: {exc}"

    def _close(self) -> None:
        self._closed = True
        self._nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_rpc_pool(
    identity: Identity,
    *,
    credentials: Credentials | None = None,
    faults: Faults | None = None,
    transport: Transport = SOCKETS,
) -> AsyncIterator[RpcPool]:
    """Open a pool of outbound connections; they all close when the block exits.

    Args:
        identity: sent in the hello of every connection; its role picks our key.
        credentials: the keys we hold; None for a server run without credentials. With
            `credentials.tls` every connection is TLS, verifying the server's certificate.
        faults: the settings shared with this process's server (``cut`` applies here too).
        transport: how connections are opened (`SOCKETS`: the operating system's).
    """
    try:
        async with trio.open_nursery() as nursery:
            pool = RpcPool(
                identity, nursery, credentials=credentials, faults=faults, transport=transport
            )
            try:
                yield pool
            finally:
                pool._close()
    except BaseExceptionGroup as group:
        # The nursery only runs connection tasks, which end quietly; an error here is the
        # body's own, and callers catch it by its type (`except RpcTimeout`, Ctrl-C...).
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            raise group.exceptions[0] from None
        raise
