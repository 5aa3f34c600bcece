"""The RPC server: accepts connections, authenticates them, runs each request in its own task.

A connection's life: the handshake (`_server_hello`) binds a role to it; then requests are
read until end of stream, each checked against the roles its method serves before its
handler runs, at most `CALLS_IN_FLIGHT_MAX` at once; one writer task owns the send side.
Every resource a connection can take is bounded: connections before and after the
handshake, frame size and item count by role, idle and half-sent frames, queued replies
and stalled writes. A peer that breaks a rule loses its connection, never more: no caller
can stop the server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

import trio

from diskv_trio import _metrics
from diskv_trio._ratelog import RateLimitedLog

from ._address import parse_address
from ._admin import AdminMethods
from ._admission import Route, admit
from ._credentials import Credentials
from ._errors import ApplicationError, ProtocolError
from ._faults import Faults
from ._fd_limit import inbound_connections_max
from ._handler import CallContext, Handler, describe_exception
from ._limits import (
    CALLS_IN_FLIGHT_MAX,
    CLIENT_CONNECTIONS_MAX,
    CLIENT_FRAME_BYTES_MAX,
    CLIENT_FRAME_ITEMS_MAX,
    CLIENT_IDLE_TIMEOUT_S,
    CLOSE_GRACE_S,
    FRAME_BYTES_MAX,
    FRAME_STALL_TIMEOUT_S,
    NAME_CHARS_MAX,
    OUTPUT_BYTES_MAX,
    RECEIVE_BYTES_MAX,
    UNAUTHENTICATED_CONNECTIONS_MAX,
)
from ._outbox import Outbox, OutboxOverflow
from ._protocol import (
    CODE_BUSY,
    CODE_INTERNAL,
    CODE_PROTOCOL,
    FrameDecoder,
    Identity,
    Request,
    encode_frame,
    error_message,
    parse_request,
    refusal_message,
    result_message,
)
from ._roles import OPERATORS, Role
from ._server_hello import server_handshake
from ._streams import TRANSPORT_ERRORS
from ._transport import SOCKETS, Transport

logger = logging.getLogger("diskv.net")

ADMIN_PREFIX = "admin."


class _IdleTimeout(Exception):
    pass


class RpcServer:
    """Serve `handlers` at `address` under `identity`.

    Use ``await nursery.start(server.serve)``; it returns the bound address (for TCP port 0,
    the port the kernel chose). Methods ``admin.faults`` and ``admin.stats`` are built in,
    served to operators only and never subject to fault injection.

    Args:
        address: ``unix:/path`` or ``HOST:PORT``.
        identity: sent in the hello reply; its cluster must match each caller's.
        handlers: method name -> async handler(args, context) -> result map.
        roles: the roles that may call `handlers` (more with `add_handlers`).
        credentials: the cluster's keys; every caller must prove it holds its role's key.
            None runs an open server: any caller may claim any role (local tests only).
            With `credentials.tls` every connection is TLS (see `_tls`).
        faults: fault injection settings, usually shared with this process's pool.
        transport: how the address is bound (`SOCKETS`: the operating system's).
    """

    def __init__(
        self,
        address: str,
        identity: Identity,
        handlers: Mapping[str, Handler],
        *,
        roles: frozenset[Role],
        credentials: Credentials | None = None,
        faults: Faults | None = None,
        transport: Transport = SOCKETS,
    ) -> None:
        self._address = parse_address(address)
        self._transport = transport
        self.identity = identity
        self._credentials = credentials
        tls = credentials.tls if credentials is not None else None
        if tls is not None and tls.server_context is None:
            raise ValueError("TLS settings without a certificate (cert.pem, key.pem) cannot serve")
        self._tls_off = tls is None
        self.faults = faults if faults is not None else Faults()
        self._routes: dict[str, Route] = {}
        self._admin = AdminMethods(identity.node_id, self.faults, self._connection_counts)
        self._admin_routes = {
            name: Route(handler, OPERATORS) for name, handler in self._admin.handlers().items()
        }
        self._refusals = RateLimitedLog(logger)
        self._unauthenticated = 0
        self._clients = 0
        self._connections_open = 0
        self._connections_accepted = 0
        self._connections_refused = 0
        self.add_handlers(handlers, roles=roles)

    @property
    def address(self) -> str:
        """The address served (after `serve` started, the bound one)."""
        return str(self._address)

    def add_handlers(self, handlers: Mapping[str, Handler], *, roles: frozenset[Role]) -> None:
        """Register more handlers (before `serve`, typically), each served to `roles` only.

        Raises:
            ValueError: a name is reserved (``admin.``), already registered or malformed.
        """
        for method in handlers:
            if not isinstance(method, str) or not method or len(method) > NAME_CHARS_MAX:
                raise ValueError(f"bad method name {method!r}")
            if method.startswith(ADMIN_PREFIX):
                raise ValueError(f"method {method!r}: the prefix {ADMIN_PREFIX!r} is reserved")
            if method in self._routes:
                raise ValueError(f"method {method!r} is already registered")
        if not roles:
            raise ValueError("handlers must be served to at least one role")
        for method, handler in handlers.items():
            self._routes[method] = Route(handler, frozenset(roles))

    def _connection_counts(self) -> dict[str, int]:
        return {
            "connections_open": self._connections_open,
            "connections_accepted": self._connections_accepted,
            "connections_refused": self._connections_refused,
        }

    # -- listening ------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report readiness with the bound address, serve until cancelled."""
        if self._credentials is None:
            logger.warning(
                "%s serves without credentials: any caller may claim any role", self.identity.node_id
            )
        self._connections_max = inbound_connections_max()
        async with self._transport.listen(self._address) as listening:
            self._address = listening.address
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    trio.serve_listeners, self._handle_connection, list(listening.listeners)
                )
                logger.info(
                    "%s/%s serving at %s", self.identity.role, self.identity.node_id, self.address
                )
                task_status.started(self.address)

    # -- one connection -------------------------------------------------------------------

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        self._connections_accepted += 1
        if (
            self._connections_open >= self._connections_max
            or self._unauthenticated >= UNAUTHENTICATED_CONNECTIONS_MAX
        ):
            # A TLS caller would read a plain refusal as "not TLS": it just sees the close.
            await self._turn_away(stream, "too many connections", speak=self._tls_off)
            return
        self._connections_open += 1
        _metrics.CONNECTIONS_OPEN.inc()
        peer = "unknown caller"
        client_slot = False
        try:
            self._unauthenticated += 1
            try:
                stream, caller = await server_handshake(
                    stream, self.identity, self._credentials, self._refusals
                )
            finally:
                self._unauthenticated -= 1
            if caller is None:
                _metrics.CONNECTIONS_REFUSED.labels("handshake").inc()
                return
            peer = f"{caller.role}/{caller.node_id!r}"
            if caller.role != Role.PEER:
                if self._clients >= CLIENT_CONNECTIONS_MAX:
                    await self._turn_away(stream, "too many client connections")
                    return
                self._clients += 1
                client_slot = True
            await self._serve_requests(stream, caller, peer)
        except TRANSPORT_ERRORS as exc:
            logger.debug("connection from %s lost: %s", peer, exc)
        except Exception as exc:  # a bug: log it, lose this connection only
            logger.error("connection from %s failed: %s", peer, describe_exception(exc))
        finally:
            self._connections_open -= 1
            _metrics.CONNECTIONS_OPEN.dec()
            if client_slot:
                self._clients -= 1
            await trio.aclose_forcefully(stream)

    async def _turn_away(self, stream: trio.abc.Stream, reason: str, *, speak: bool = True) -> None:
        self._connections_refused += 1
        _metrics.CONNECTIONS_REFUSED.labels(reason).inc()
        self._refusals.warning("connection refused: %s", reason)
        if speak:
            with contextlib.suppress(*TRANSPORT_ERRORS), trio.move_on_after(1.0):
                await stream.send_all(encode_frame(refusal_message(CODE_BUSY, reason)))
        await trio.aclose_forcefully(stream)

    async def _serve_requests(self, stream: trio.abc.Stream, caller: Identity, peer: str) -> None:
        is_peer = caller.role == Role.PEER
        decoder = (
            FrameDecoder(FRAME_BYTES_MAX)
            if is_peer
            else FrameDecoder(CLIENT_FRAME_BYTES_MAX, items_max=CLIENT_FRAME_ITEMS_MAX)
        )
        limiter = trio.Semaphore(CALLS_IN_FLIGHT_MAX)
        async with trio.open_nursery() as connection:

            def overflowed() -> None:
                self._refusals.warning(
                    "closing connection from %s: over %d reply bytes it does not read",
                    peer,
                    OUTPUT_BYTES_MAX,
                )
                connection.cancel_scope.cancel()

            outbox = Outbox(OUTPUT_BYTES_MAX, overflowed)
            connection.start_soon(self._write, stream, outbox, peer, connection.cancel_scope)
            async with outbox:
                closing: str | None = None
                async with trio.open_nursery() as requests:
                    try:
                        await self._read_requests(stream, decoder, caller, outbox, limiter, requests)
                    except ProtocolError as exc:
                        closing = str(exc)
                        requests.cancel_scope.cancel()
                    except _IdleTimeout:
                        logger.debug("closing idle connection from %s", peer)
                        requests.cancel_scope.cancel()
                    except TRANSPORT_ERRORS as exc:
                        logger.debug("connection from %s lost while reading: %s", peer, exc)
                    if closing is None:
                        # The caller is gone and replies cannot be delivered, but let running
                        # requests finish (as the course's server does), within a grace period.
                        requests.cancel_scope.deadline = trio.current_time() + CLOSE_GRACE_S
                if closing is not None:
                    _metrics.CONNECTIONS_REFUSED.labels("protocol").inc()
                    self._refusals.warning("closing connection from %s: %s", peer, closing)
                    frame = encode_frame(error_message(None, CODE_PROTOCOL, closing))
                    with contextlib.suppress(OutboxOverflow, trio.ClosedResourceError):
                        outbox.put(frame)
            # The outbox is closed: the writer drains what is queued and returns.

    async def _write(
        self, stream: trio.abc.Stream, outbox: Outbox, peer: str, scope: trio.CancelScope
    ) -> None:
        """Own the stream's send side; a broken or stalled stream ends the connection."""
        try:
            await outbox.drain_to(stream)
        except TRANSPORT_ERRORS as exc:
            logger.debug("connection to %s broken while writing: %s", peer, exc)
            scope.cancel()
        except trio.TooSlowError:
            _metrics.CONNECTIONS_REFUSED.labels("slow reader").inc()
            self._refusals.warning("closing connection from %s: it does not read its replies", peer)
            scope.cancel()

    async def _receive(self, stream: trio.abc.Stream, decoder: FrameDecoder, idle_ok: bool) -> bool:
        """Read more bytes into `decoder`; False at end of stream. A half-sent frame must
        keep coming, and a client with nothing running may not sit idle for ever."""
        if decoder.inside_frame:
            timeout, error = FRAME_STALL_TIMEOUT_S, "frame stalled half-way"
        elif idle_ok:
            timeout, error = CLIENT_IDLE_TIMEOUT_S, ""
        else:
            timeout, error = float("inf"), ""
        with trio.move_on_after(timeout):
            data = await stream.receive_some(RECEIVE_BYTES_MAX)
            if not data:
                decoder.check_eof()
                return False
            decoder.feed(data)
            return True
        if error:
            raise ProtocolError(f"{error}: no bytes for {timeout:.0f} s")
        raise _IdleTimeout()

    async def _read_requests(
        self,
        stream: trio.abc.Stream,
        decoder: FrameDecoder,
        caller: Identity,
        outbox: Outbox,
        limiter: trio.Semaphore,
        requests: trio.Nursery,
    ) -> None:
        # Frames already buffered are handled without yielding, so that a burst of requests
        # is spawned together and their replies leave in one write.
        may_idle = caller.role != Role.PEER
        while True:
            message = decoder.next_message()
            if message is None:
                idle_ok = may_idle and limiter.value == CALLS_IN_FLIGHT_MAX
                if not await self._receive(stream, decoder, idle_ok):
                    return
                continue
            request = parse_request(message)
            handler, counted, deliver_reply, immediate = admit(
                request, caller, self._routes, self._admin_routes, self.faults
            )
            if immediate is not None:
                outbox.put(encode_frame(immediate))
            if handler is None:
                continue
            context = CallContext(request.method, caller.role, caller.node_id)
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                await limiter.acquire()
            requests.start_soon(
                self._run_request, handler, request, context, outbox, limiter, counted, deliver_reply
            )

    async def _run_request(
        self,
        handler: Handler,
        request: Request,
        context: CallContext,
        outbox: Outbox,
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
                    outbox.put(frame)
                except trio.ClosedResourceError:
                    pass  # the connection is gone; so is the caller
                except OutboxOverflow:
                    pass  # the writer stops and the connection closes
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
                "handler %s (from %s/%r) raised %s",
                request.method,
                context.peer_role,
                context.peer_id,
                describe_exception(exc),
            )
            return encode_frame(
                error_message(request.request_id, CODE_INTERNAL, f"{type(exc).__name__}: {exc}")
            )
