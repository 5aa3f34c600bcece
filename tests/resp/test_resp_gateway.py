"""The Trio driver over real loopback TCP, with an in-memory store behind it.

Checks what a hostile or careless client can do to the gateway: pipelines answered in
order, protocol errors answered after the commands before them and then closed, a client
stopping mid-command (nothing applied), leaving mid-command (the command still completes),
idling, flooding connections, and a store that does not answer (a timeout error, the
connection lives). Timeouts run on Trio's autojump clock, so nothing sleeps for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import hiredis
import trio
import trio.testing

from diskv_trio.resp import COMMAND_STALL_S, IDLE_S, RespGateway
from tests.resp.memory_store import MemoryStore
from tests.resp.test_resp_core import command


class RawClient:
    """A TCP client that sends any bytes and parses replies with hiredis."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = hiredis.Reader()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def replies(self, count: int) -> list[object]:
        got: list[object] = []
        while len(got) < count:
            item = self.reader.gets()
            if item is not False:
                got.append(item)
                continue
            data = await self.stream.receive_some(65536)
            assert data, f"connection closed after {got!r}"
            self.reader.feed(data)
        return got

    async def closed(self) -> bool:
        """True once the gateway closed the connection (after any remaining replies)."""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return True
            if not data:
                return True
            self.reader.feed(data)


@asynccontextmanager
async def gateway(store: MemoryStore, **options: object) -> AsyncIterator[tuple[RespGateway, int]]:
    server = RespGateway(store, password=None, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        yield server, port
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def client(port: int) -> AsyncIterator[RawClient]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        yield RawClient(stream)


async def test_pipelined_commands_are_answered_in_order() -> None:
    store = MemoryStore()
    async with gateway(store) as (_, port), client(port) as raw:
        batch = b"".join(command(b"APPEND", b"k", b"%d," % i) + command(b"GET", b"k") for i in range(50))
        await raw.send(batch + command(b"STRLEN", b"k"))
        replies = await raw.replies(101)
    expected_value = b""
    for i in range(50):
        expected_value += b"%d," % i
        assert replies[2 * i] == len(expected_value)
        assert replies[2 * i + 1] == expected_value
    assert replies[100] == len(expected_value)


async def test_a_protocol_error_is_answered_after_earlier_commands_then_closed() -> None:
    store = MemoryStore()
    async with gateway(store) as (server, port):
        async with client(port) as raw:
            await raw.send(command(b"SET", b"a", b"1") + b"*1\r\n*5\r\n" + command(b"SET", b"b", b"2"))
            first, refusal = await raw.replies(2)
            assert first == b"OK"
            assert isinstance(refusal, hiredis.ReplyError) and "Protocol error" in str(refusal)
            assert await raw.closed()
        assert store.data == {b"a": b"1"}  # nothing after the bad bytes ran
        assert server.stats.protocol_errors == 1
        async with client(port) as raw:  # the gateway lives
            await raw.send(command(b"GET", b"a"))
            assert await raw.replies(1) == [b"1"]


async def test_huge_declared_lengths_are_refused_before_buffering() -> None:
    store = MemoryStore()
    async with gateway(store) as (_, port):
        for header in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999999\r\n", b"*2147483647\r\n"):
            async with client(port) as raw:
                await raw.send(header)
                (refusal,) = await raw.replies(1)
                assert isinstance(refusal, hiredis.ReplyError)
                assert await raw.closed()
        assert store.calls == []


async def test_a_client_stopping_mid_command_applies_nothing_and_is_closed(autojump_clock: trio.abc.Clock) -> None:
    store = MemoryStore()
    async with gateway(store) as (_, port), client(port) as raw:
        await raw.send(command(b"SET", b"k", b"value")[:-4])
        started = trio.current_time()
        assert await raw.closed()
        assert COMMAND_STALL_S <= trio.current_time() - started < IDLE_S
    assert store.calls == [] and store.data == {}


async def test_an_idle_connection_is_closed_after_the_idle_limit(autojump_clock: trio.abc.Clock) -> None:
    async with gateway(MemoryStore()) as (_, port), client(port) as raw:
        started = trio.current_time()
        assert await raw.closed()
        assert trio.current_time() - started >= IDLE_S


async def test_a_command_whose_client_left_still_completes() -> None:
    store = MemoryStore()
    store.hold = trio.Event()
    async with gateway(store) as (server, port):
        async with client(port) as raw:
            await raw.send(command(b"MSET", b"x") + command(b"DEL", b"a") + command(b"SET", b"k", b"v"))
            await store.started.wait()
        store.hold.set()
        await trio.testing.wait_all_tasks_blocked()
        assert store.calls == ["delete", "put"]
        assert store.data == {b"k": b"v"}
        assert server.stats.connections_current == 0


async def test_a_store_that_does_not_answer_gets_a_timeout_error_and_the_connection_lives(
    autojump_clock: trio.abc.Clock,
) -> None:
    store = MemoryStore()
    store.hold = trio.Event()
    async with gateway(store, command_deadline_s=5.0) as (_, port), client(port) as raw:
        await raw.send(command(b"GET", b"k") + command(b"PING"))
        timeout, pong = await raw.replies(2)
        assert isinstance(timeout, hiredis.ReplyError) and str(timeout).startswith("TIMEOUT")
        assert pong == b"PONG"


async def test_connections_past_the_cap_are_refused_and_thousands_idle_are_fine() -> None:
    async with gateway(MemoryStore(), connections_max=2) as (server, port):
        async with client(port) as first, client(port) as second, client(port) as third:
            (refusal,) = await third.replies(1)
            assert "max number of clients reached" in str(refusal)
            assert await third.closed()
            await first.send(command(b"PING"))
            await second.send(command(b"PING"))
            assert await first.replies(1) == await second.replies(1) == [b"PONG"]
        assert server.stats.connections_rejected == 1
    idle_count = 2000
    async with gateway(MemoryStore()) as (server, port):
        streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(idle_count)]
        try:
            async with client(port) as raw:
                await raw.send(command(b"INFO", b"clients"))
                (info,) = await raw.replies(1)
                assert isinstance(info, bytes)
                assert b"connected_clients:%d" % (idle_count + 1) in info
        finally:
            for stream in streams:
                await stream.aclose()
