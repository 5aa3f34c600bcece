"""The RPC server: accepts connections, checks the hello, runs each request in its own task.

A connection's life: read the hello (small frame limit, `HELLO_TIMEOUT_S`), refuse a wrong
version, token or cluster with an error frame and close; otherwise answer with our identity
and read requests until end of stream. Each request runs in its own task, at most
`CALLS_IN_FLIGHT_MAX` at once per connection; one writer task owns the stream's send side.
A peer that breaks the protocol gets an error frame and loses its connection, never more:
no client can stop the server.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import logging
import os
import socket
import stat
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ._address import TcpAddress, UnixAddress, parse_address
from ._errors import ApplicationError, ProtocolError
from ._faults import Fate, Faults
from ._limits import (
    CALLS_IN_FLIGHT_MAX,
    CLOSE_GRACE_S,
    FRAME_BYTES_MAX,
    HELLO_FRAME_BYTES_MAX,
    HELLO_TIMEOUT_S,
    NAME_CHARS_MAX,
    PROTOCOL_VERSION,
)
from ._protocol import (
    CODE_CLUSTER,
    CODE_INTERNAL,
    CODE_PROTOCOL,
    CODE_TOKEN,
    CODE_UNAVAILABLE,
    CODE_UNKNOWN_METHOD,
    CODE_VERSION,
    FrameDecoder,
    Identity,
    Request,
    encode_frame,
    error_message,
    hello_message,
    parse_hello,
    parse_request,
    refusal_message,
    result_message,
)
from ._streams import TRANSPORT_ERRORS, receive_message, write_frames

logger = logging.getLogger("diskv.net")

ADMIN_PREFIX = "admin."


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler knows about the call: the method and the caller's hello identity."""

    method: str
    peer_role: str
    peer_id: str


Handler = Callable[[dict[str, Any], CallContext], Awaitable[dict[str, Any]]]


def _describe(exc: BaseException) -> str:
    """One line naming an exception and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}"
        if frames
        else ""
    )
    return f"{type(exc).__name__}: {exc}{where}"


class RpcServer:
    """Serve `handlers` at `address` under `identity`.

    Use ``await nursery.start(server.serve)``; it returns the bound address (for TCP port 0,
    the port the kernel chose). Methods ``admin.faults`` and ``admin.stats`` are built in and
    never subject to fault injection.

    Args:
        address: ``unix:/path`` or ``HOST:PORT``.
        identity: sent in the hello reply; its cluster must match each client's.
        handlers: method name -> async handler(args, context) -> result map.
        token: if set, every client's hello must carry this token.
        faults: fault injection settings, usually shared with this process's pool.
    """

    def __init__(
        self,
        address: str,
        identity: Identity,
        handlers: Mapping[str, Handler],
        *,
        token: str | None = None,
        faults: Faults | None = None,
    ) -> None:
        self._address = parse_address(address)
        self.identity = identity
        self._token = token.encode() if token is not None else None
        self.faults = faults if faults is not None else Faults()
        self._handlers: dict[str, Handler] = {}
        self._admin_handlers: dict[str, Handler] = {
            "admin.faults": self._admin_faults,
            "admin.stats": self._admin_stats,
        }
        self._connections_open = 0
        self._connections_accepted = 0
        self.add_handlers(handlers)

    @property
    def address(self) -> str:
        """The address served (after `serve` started, the bound one)."""
        return str(self._address)

    def add_handlers(self, handlers: Mapping[str, Handler]) -> None:
        """Register more handlers (before `serve`, typically).

        Raises:
            ValueError: a name is reserved (``admin.``), already registered or malformed.
        """
        for method in handlers:
            if not isinstance(method, str) or not method or len(method) > NAME_CHARS_MAX:
                raise ValueError(f"bad method name {method!r}")
            if method.startswith(ADMIN_PREFIX):
                raise ValueError(f"method {method!r}: the prefix {ADMIN_PREFIX!r} is reserved")
            if method in self._handlers:
                raise ValueError(f"method {method!r} is already registered")
        self._handlers.update(handlers)

    # -- listening ------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report readiness with the bound address, serve until cancelled."""
        address = self._address
        created: tuple[int, int] | None = None
        if isinstance(address, UnixAddress):
            listener, created = await _open_unix_listener(address.path)
            listeners: list[trio.SocketListener] = [listener]
        else:
            listeners = await trio.open_tcp_listeners(address.port, host=address.host)
            bound_port = listeners[0].socket.getsockname()[1]
            self._address = TcpAddress(address.host, bound_port)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._handle_connection, listeners)
                logger.info(
                    "%s/%s serving at %s", self.identity.role, self.identity.node_id, self.address
                )
                task_status.started(self.address)
        finally:
            for each in listeners:
                each.socket.close()
            if isinstance(address, UnixAddress) and created is not None:
                _remove_socket_file(address.path, created)

    # -- one connection -------------------------------------------------------------------

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        self._connections_open += 1
        self._connections_accepted += 1
        peer = "unknown peer"
        try:
            peer_identity = await self._handshake(stream)
            if peer_identity is None:
                return
            peer = f"{peer_identity.role}/{peer_identity.node_id}"
            await self._serve_requests(stream, peer_identity, peer)
        except TRANSPORT_ERRORS as exc:
            logger.debug("connection from %s lost: %s", peer, exc)
        except Exception as exc:  # a bug: log it, lose this connection only
            logger.error("connection from %s failed: %s", peer, _describe(exc))
        finally:
            self._connections_open -= 1

    async def _handshake(self, stream: trio.SocketStream) -> Identity | None:
        """Read and check the hello; answer it. Returns the peer, or None if refused/gone."""
        decoder = FrameDecoder(HELLO_FRAME_BYTES_MAX)
        with trio.move_on_after(HELLO_TIMEOUT_S) as scope:
            try:
                message = await receive_message(stream, decoder)
            except ProtocolError as exc:
                await self._refuse(stream, CODE_PROTOCOL, f"bad hello frame: {exc}")
                return None
        if scope.cancelled_caught:
            logger.warning("connection closed: no hello within %s s", HELLO_TIMEOUT_S)
            return None
        if message is None:
            return None
        try:
            hello = parse_hello(message)
        except ProtocolError as exc:
            await self._refuse(stream, CODE_PROTOCOL, str(exc))
            return None
        if hello.version != PROTOCOL_VERSION:
            await self._refuse(
                stream,
                CODE_VERSION,
                f"protocol version {hello.version} not supported, this server speaks {PROTOCOL_VERSION}",
            )
            return None
        if self._token is not None and (
            hello.token is None or not hmac.compare_digest(hello.token.encode(), self._token)
        ):
            await self._refuse(
                stream,
                CODE_TOKEN,
                f"wrong or missing token from {hello.identity.role}/{hello.identity.node_id}",
            )
            return None
        if hello.identity.cluster != self.identity.cluster:
            await self._refuse(
                stream,
                CODE_CLUSTER,
                f"cluster {hello.identity.cluster!r} is not this server's cluster {self.identity.cluster!r}",
            )
            return None
        await stream.send_all(encode_frame(hello_message(self.identity, None)))
        return hello.identity

    async def _refuse(self, stream: trio.SocketStream, code: str, text: str) -> None:
        logger.warning("hello refused (%s): %s", code, text)
        await stream.send_all(encode_frame(refusal_message(code, text)))

    async def _serve_requests(
        self, stream: trio.SocketStream, peer_identity: Identity, peer: str
    ) -> None:
        decoder = FrameDecoder(FRAME_BYTES_MAX)
        frames_in, frames_out = trio.open_memory_channel[bytes](CALLS_IN_FLIGHT_MAX)
        limiter = trio.Semaphore(CALLS_IN_FLIGHT_MAX)
        async with trio.open_nursery() as connection:
            connection.start_soon(self._write, stream, frames_out, peer)
            async with frames_in:
                protocol_error: ProtocolError | None = None
                async with trio.open_nursery() as requests:
                    try:
                        await self._read_requests(
                            stream, decoder, peer_identity, frames_in, limiter, requests
                        )
                    except ProtocolError as exc:
                        protocol_error = exc
                        requests.cancel_scope.cancel()
                    except TRANSPORT_ERRORS as exc:
                        logger.debug("connection from %s lost while reading: %s", peer, exc)
                    if protocol_error is None:
                        # The peer is gone and replies cannot be delivered, but let running
                        # requests finish (as the course's server does), within a grace period.
                        requests.cancel_scope.deadline = trio.current_time() + CLOSE_GRACE_S
                if protocol_error is not None:
                    logger.warning("closing connection from %s: %s", peer, protocol_error)
                    frame = encode_frame(error_message(None, CODE_PROTOCOL, str(protocol_error)))
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await frames_in.send(frame)
            # frames_in is closed: the writer drains what is queued and returns.

    async def _write(
        self, stream: trio.SocketStream, frames_out: trio.MemoryReceiveChannel[bytes], peer: str
    ) -> None:
        """Own the stream's send side; on failure close the channel so senders fail fast."""
        try:
            await write_frames(stream, frames_out)
        except TRANSPORT_ERRORS as exc:
            logger.debug("connection to %s broken while writing: %s", peer, exc)

    async def _read_requests(
        self,
        stream: trio.SocketStream,
        decoder: FrameDecoder,
        peer_identity: Identity,
        frames_in: trio.MemorySendChannel[bytes],
        limiter: trio.Semaphore,
        requests: trio.Nursery,
    ) -> None:
        # Frames already buffered are handled without yielding, so that a burst of requests
        # is spawned together and their replies leave in one write.
        while True:
            message = await receive_message(stream, decoder)
            if message is None:
                return
            request = parse_request(message)
            handler, counted, deliver_reply, immediate = self._admit(request, peer_identity)
            if immediate is not None:
                await _send_soon(frames_in, encode_frame(immediate))
            if handler is None:
                continue
            context = CallContext(request.method, peer_identity.role, peer_identity.node_id)
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                await limiter.acquire()
            requests.start_soon(
                self._run_request,
                handler,
                request,
                context,
                frames_in,
                limiter,
                counted,
                deliver_reply,
            )

    def _admit(
        self, request: Request, peer_identity: Identity
    ) -> tuple[Handler | None, bool, bool, dict[str, Any] | None]:
        """Decide what happens to a request: admin, refused, unknown, dropped, reply lost or
        delivered. Returns (handler to run or None, count it, deliver its reply, a reply to
        send at once or None)."""
        method = request.method
        admin_handler = self._admin_handlers.get(method)
        if admin_handler is not None:
            return admin_handler, False, True, None
        faults = self.faults
        refusal = None
        if faults.deaf:
            refusal = "deaf"
        elif peer_identity.node_id in faults.cut:
            refusal = "cut"
        elif peer_identity.node_id in faults.deaf_to:
            refusal = "deaf"
        if refusal is not None:
            faults.fault_count[refusal] += 1
            text = f"refused ({refusal})"
            return None, False, False, error_message(request.request_id, CODE_UNAVAILABLE, text)
        handler = self._handlers.get(method)
        if handler is None:
            text = f"no method {method!r} here"
            return None, False, False, error_message(request.request_id, CODE_UNKNOWN_METHOD, text)
        fate = faults.draw()
        if fate is Fate.DROP:
            faults.fault_count["dropped"] += 1
            lost = error_message(request.request_id, CODE_UNAVAILABLE, "request lost")
            return None, False, False, lost
        if fate is Fate.LOSE_REPLY:
            faults.fault_count["reply-lost"] += 1
            lost = error_message(request.request_id, CODE_UNAVAILABLE, "reply lost")
            return handler, True, False, lost
        return handler, True, True, None

    async def _run_request(
        self,
        handler: Handler,
        request: Request,
        context: CallContext,
        frames_in: trio.MemorySendChannel[bytes],
        limiter: trio.Semaphore,
        counted: bool,
        deliver_reply: bool,
    ) -> None:
        try:
            if counted:
                self.faults.rpc_count[request.method] += 1
            frame = await self._execute(handler, request, context)
            if deliver_reply:
                try:
                    await frames_in.send(frame)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the connection is gone; so is the caller
        finally:
            limiter.release()

    async def _execute(self, handler: Handler, request: Request, context: CallContext) -> bytes:
        """Run the handler and return the reply frame; handler failures become error frames."""
        try:
            result = await handler(request.args, context)
            if not isinstance(result, dict):
                raise TypeError(f"handler returned {type(result).__name__}, expected dict")
            return encode_frame(result_message(request.request_id, result))
        except ApplicationError as exc:
            return encode_frame(error_message(request.request_id, str(exc.code), str(exc.message)))
        except Exception as exc:
            logger.error(
                "handler %s (from %s/%s) raised %s",
                request.method,
                context.peer_role,
                context.peer_id,
                _describe(exc),
            )
            return encode_frame(
                error_message(request.request_id, CODE_INTERNAL, f"{type(exc).__name__}: {exc}")
            )

    # -- built-in admin methods -----------------------------------------------------------

    async def _admin_faults(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        """Read, and if `args` holds any of unreliable/cut/deaf, change the fault settings."""
        try:
            self.faults.update(args)
        except ValueError as exc:
            raise ApplicationError("bad-args", str(exc)) from None
        settings = self.faults.settings()
        if args:
            logger.info(
                "faults of %s set by %s/%s: %s",
                self.identity.node_id,
                context.peer_role,
                context.peer_id,
                settings,
            )
        return settings

    async def _admin_stats(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        """Executed requests per method, fault counts and connections."""
        return {
            "node_id": self.identity.node_id,
            "rpc_count": dict(self.faults.rpc_count),
            "fault_count": dict(self.faults.fault_count),
            "connections_open": self._connections_open,
            "connections_accepted": self._connections_accepted,
        }


async def _send_soon(channel: trio.MemorySendChannel[bytes], frame: bytes) -> None:
    """Queue a frame, yielding only if the queue is full."""
    try:
        channel.send_nowait(frame)
    except trio.WouldBlock:
        await channel.send(frame)


async def _open_unix_listener(path: str) -> tuple[trio.SocketListener, tuple[int, int]]:
    """Bind a Unix socket at `path`, first removing a stale socket file (never another kind
    of file). Returns the listener and the (device, inode) of the socket file created."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(existing.st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a socket; not removing it", path)
        os.unlink(path)
        logger.info("removed stale socket file %s", path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        sock.listen(socket.SOMAXCONN)
        created = os.lstat(path)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock), (created.st_dev, created.st_ino)


def _remove_socket_file(path: str, created: tuple[int, int]) -> None:
    """Remove our socket file, unless someone has since replaced it."""
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        return
    if (current.st_dev, current.st_ino) == created:
        os.unlink(path)
