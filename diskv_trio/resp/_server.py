"""The Trio driver: accept connections, move bytes, run store plans; decisions are elsewhere.

Rules kept here:
- Per connection, a reader task feeds bytes to `RequestReader` and queues whole commands
  (at most `PIPELINE_COMMANDS_MAX`, then it stops reading: backpressure); an executor task
  takes them in order, asks the `Session`, runs store plans on the shared `Client`, and
  writes replies in order, coalescing the replies of a pipeline into one write.
- A command is never cut in the middle by its client: once it started it runs to its
  reply or its deadline (`COMMAND_DEADLINE_S`). A command that had not arrived whole never
  runs. After a protocol error, the replies to the commands before it are sent, then the
  error, then the connection is closed.
- A connection that stalls mid-command (`COMMAND_STALL_S`), stays idle (`IDLE_S`) or stops
  reading replies (`WRITE_STALL_S`) is closed; a connection past the cap is answered
  Redis's "max number of clients reached" and closed. The gateway itself keeps serving.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from diskv_trio.client import DiskvError, InvalidRequestError
from diskv_trio.net import inbound_connections_max

from ._info import GatewayFacts, GatewayStats
from ._limits import (
    COMMAND_DEADLINE_S,
    COMMAND_STALL_S,
    CONNECTIONS_MAX,
    IDLE_S,
    KEYS_IN_FLIGHT_MAX,
    PIPELINE_COMMANDS_MAX,
    RECEIVE_BYTES_MAX,
    WRITE_BATCH_BYTES_MAX,
    WRITE_STALL_S,
)
from ._plans import KvCall, KvCas, KvDelete, KvGet, KvPut, KvResult, Plan
from ._reader import RequestReader
from ._replies import Error, Reply, encode, error
from ._session import Answer, Session

log = logging.getLogger("diskv.resp")


class KvStore(Protocol):
    """What the gateway needs of a store: `diskv_trio.Client` (tests use an in-memory twin)."""

    async def get(self, key: bytes) -> bytes | None: ...
    async def put(self, key: bytes, value: bytes) -> None: ...
    async def cas(self, key: bytes, expected: bytes | None, new: bytes) -> bool: ...
    async def delete(self, key: bytes) -> bool: ...

    @property
    def last_wait(self) -> object | None: ...

MAX_CLIENTS_REPLY = encode(error("ERR", "max number of clients reached"), 2)


@dataclass(frozen=True, slots=True)
class _Refused:
    """Queued after the commands read before a protocol error: answer it, then close."""

    reply: Error


class RespGateway:
    """Serves RESP on TCP, turning commands into calls on `kv`.

    Args:
        kv: the store every connection shares (a `diskv_trio.Client`).
        password: what AUTH must present (None: no AUTH needed).
        connections_max: open connections allowed (also kept below the descriptor limit).
        command_deadline_s: bound on one command's store calls.
    """

    def __init__(
        self,
        kv: KvStore,
        *,
        password: bytes | None,
        version: str = "unknown",
        connections_max: int = CONNECTIONS_MAX,
        command_deadline_s: float = COMMAND_DEADLINE_S,
    ) -> None:
        self._kv = kv
        self._password = password
        self._version = version
        self._connections_max = min(connections_max, inbound_connections_max())
        self._command_deadline_s = command_deadline_s
        self._next_client_id = 1
        self.stats = GatewayStats()
        self.facts: GatewayFacts | None = None

    async def serve(self, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on `host`:`port` (0: any free port) and serve until cancelled.

        `task_status.started` gets the bound port.
        """
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        self.facts = GatewayFacts(
            version=self._version,
            process_id=os.getpid(),
            tcp_port=bound,
            started_s=trio.current_time(),
            connections_max=self._connections_max,
            auth_required=self._password is not None,
        )
        log.info("RESP gateway listening on %s:%d", host, bound)
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started(bound)

    async def _handle(self, stream: trio.SocketStream) -> None:
        stats = self.stats
        stats.connections_total += 1
        async with stream:
            if stats.connections_current >= self._connections_max:
                stats.connections_rejected += 1
                with trio.move_on_after(1):
                    await _send_quietly(stream, MAX_CLIENTS_REPLY)
                return
            stats.connections_current += 1
            try:
                await self._serve_connection(stream)
            finally:
                stats.connections_current -= 1

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        assert self.facts is not None
        session = Session(self._next_client_id, self.facts, self.stats, self._password)
        self._next_client_id += 1
        send, receive = trio.open_memory_channel[list[bytes] | _Refused](PIPELINE_COMMANDS_MAX)
        connection = _Connection(stream, session)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, connection, send)
            await self._execute(connection, receive)
            nursery.cancel_scope.cancel()

    async def _read(self, connection: _Connection, send: trio.MemorySendChannel[list[bytes] | _Refused]) -> None:
        async with send:
            try:
                await self._read_into(connection, send)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the executor is gone (QUIT, or the client stopped reading)

    async def _read_into(self, connection: _Connection, send: trio.MemorySendChannel[list[bytes] | _Refused]) -> None:
        reader = RequestReader()
        while True:
            limit_s = COMMAND_STALL_S if reader.in_command else IDLE_S
            with trio.move_on_after(limit_s) as waited:
                try:
                    data = await connection.stream.receive_some(RECEIVE_BYTES_MAX)
                except trio.BrokenResourceError:
                    return
            if waited.cancelled_caught:
                if reader.in_command or connection.outstanding == 0:
                    log.debug("client %d: %s, closing", connection.session.client_id,
                              "stalled mid-command" if reader.in_command else "idle")
                    return
                continue
            if not data:
                return
            parsed = reader.feed(data)
            for words in parsed.commands:
                connection.outstanding += 1
                await send.send(words)
            if parsed.error is not None:
                self.stats.protocol_errors += 1
                log.debug("client %d: protocol error: %s", connection.session.client_id, parsed.error)
                await send.send(_Refused(error("ERR", f"Protocol error: {parsed.error}")))
                return

    async def _execute(self, connection: _Connection, receive: trio.MemoryReceiveChannel[list[bytes] | _Refused]) -> None:
        session, out = connection.session, bytearray()
        async with receive:
            async for item in receive:
                if isinstance(item, _Refused):
                    out += session.encode(item.reply)
                    await connection.flush(out)
                    return
                reply, close = await self._answer(session, item)
                connection.outstanding -= 1
                self.stats.commands_total += 1
                if isinstance(reply, Error):
                    self.stats.error_replies += 1
                out += session.encode(reply)
                if close:
                    await connection.flush(out)
                    return
                if receive.statistics().current_buffer_used == 0 or len(out) >= WRITE_BATCH_BYTES_MAX:
                    if not await connection.flush(out):
                        return

    async def _answer(self, session: Session, words: list[bytes]) -> tuple[Reply, bool]:
        step = session.command(words, trio.current_time())
        if isinstance(step, Answer):
            return step.reply, step.close
        return await self._run(step.plan), False

    async def _run(self, plan: Plan) -> Reply:
        """Drive `plan` to its reply; bounded by the command deadline and never cut by the client."""
        try:
            with trio.fail_after(self._command_deadline_s):
                calls = next(plan)
                while True:
                    results = await self._calls(calls)
                    calls = plan.send(results)
        except StopIteration as finished:
            reply: Reply = finished.value
            return reply
        except trio.TooSlowError:
            waiting = self._kv.last_wait
            return error(
                "TIMEOUT",
                f"no answer from the cluster within {self._command_deadline_s:g} s"
                f"{f' ({waiting})' if waiting else ''}; a write may still take effect",
            )
        except InvalidRequestError as exc:
            return error("ERR", str(exc))
        except DiskvError as exc:
            return error("ERR", f"the cluster refused the request: {exc}")
        finally:
            plan.close()

    async def _calls(self, calls: Sequence[KvCall]) -> list[KvResult]:
        if len(calls) == 1:
            return [await self._call(calls[0])]
        results: list[KvResult] = [None] * len(calls)
        limiter = trio.CapacityLimiter(KEYS_IN_FLIGHT_MAX)

        async def one(index: int) -> None:
            async with limiter:
                results[index] = await self._call(calls[index])

        async with trio.open_nursery() as nursery:
            for index in range(len(calls)):
                nursery.start_soon(one, index)
        return results

    async def _call(self, call: KvCall) -> KvResult:
        stats = self.stats
        if isinstance(call, KvGet):
            stats.calls["get"] += 1
            found = await self._kv.get(call.key)
            if found is None:
                stats.keyspace_misses += 1
            else:
                stats.keyspace_hits += 1
            return found
        if isinstance(call, KvPut):
            stats.calls["put"] += 1
            await self._kv.put(call.key, call.value)
            return None
        if isinstance(call, KvCas):
            stats.calls["cas"] += 1
            return await self._kv.cas(call.key, call.expected, call.new)
        assert isinstance(call, KvDelete)
        stats.calls["delete"] += 1
        return await self._kv.delete(call.key)


class _Connection:
    """A connection's stream, session and count of commands read but not yet answered."""

    def __init__(self, stream: trio.SocketStream, session: Session) -> None:
        self.stream = stream
        self.session = session
        self.outstanding = 0

    async def flush(self, out: bytearray) -> bool:
        """Write `out` and clear it; False if the client is gone or stopped reading."""
        if not out:
            return True
        with trio.move_on_after(WRITE_STALL_S):
            ok = await _send_quietly(self.stream, bytes(out))
            out.clear()
            return ok
        log.debug("client %d: stopped reading replies, closing", self.session.client_id)
        return False


async def _send_quietly(stream: trio.SocketStream, data: bytes) -> bool:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    return True

