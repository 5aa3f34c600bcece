"""Round trips, concurrency, deadlines, reconnects and server-side errors over real sockets."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio

import diskv_trio.net as net
from diskv_trio.net import (
    EVERYONE,
    Identity,
    RpcRemoteError,
    RpcServer,
    RpcTimeout,
    RpcUnavailable,
    open_rpc_pool,
)

CLUSTER = "test-cluster"
SERVER = Identity(CLUSTER, "peer", "s1")
CLIENT = Identity(CLUSTER, "operator", "c1")
DEADLINE_S = 5.0


async def start_server(
    nursery: trio.Nursery, address: str, service: Any, **kwargs: Any
) -> RpcServer:
    server = RpcServer(address, SERVER, service.handlers(), roles=EVERYONE, **kwargs)
    await nursery.start(server.serve)
    return server


def test_exports() -> None:
    """Every name in __all__ exists and the agreed API is all there."""
    for name in net.__all__:
        assert hasattr(net, name), name
    agreed = {
        "parse_address", "Identity", "RpcServer", "RpcPool", "open_rpc_pool", "CallContext", "Faults",
        "NetError", "RpcUnavailable", "RpcTimeout", "RpcRemoteError", "ApplicationError",
        "ProtocolError", "HandshakeError", "PROTOCOL_VERSION", "FRAME_BYTES_MAX",
    }  # fmt: skip
    assert agreed <= set(net.__all__)
    assert issubclass(net.RpcTimeout, net.RpcUnavailable)
    assert net.FRAME_BYTES_MAX == 64 * 1024 * 1024


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_round_trip(kind: str, sock_dir: Path, nursery: trio.Nursery, service: Any) -> None:
    """A call reaches the handler with the caller's identity and returns its result."""
    address = f"unix:{sock_dir}/s1" if kind == "unix" else "127.0.0.1:0"
    server = await start_server(nursery, address, service)
    if kind == "tcp":
        assert not server.address.endswith(":0")
    async with open_rpc_pool(CLIENT) as pool:
        args = {"n": 7, "blob": b"\x00\xff", "nested": {"list": [1, "two", None]}}
        result = await pool.call(server.address, "test.echo", args, deadline_s=DEADLINE_S)
    assert result == {"echo": args}
    assert service.contexts == [net.CallContext("test.echo", "operator", "c1")]


async def test_many_concurrent_calls_share_one_connection(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """200 concurrent calls on one pool each get their own reply over a single connection."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    results: dict[int, Any] = {}
    async with open_rpc_pool(CLIENT) as pool:

        async def one(n: int) -> None:
            results[n] = await pool.call(
                server.address, "test.echo", {"n": n}, deadline_s=DEADLINE_S
            )

        async with trio.open_nursery() as callers:
            for n in range(200):
                callers.start_soon(one, n)
        stats = await pool.call(server.address, "admin.stats", {}, deadline_s=DEADLINE_S)
    assert results == {n: {"echo": {"n": n}} for n in range(200)}
    assert stats["connections_accepted"] == 1
    assert stats["rpc_count"] == {"test.echo": 200}


async def test_slow_handler_does_not_block_others(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """A hanging request on a connection does not delay other requests on it."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    async with open_rpc_pool(CLIENT) as pool:
        async with trio.open_nursery() as callers:
            callers.start_soon(lambda: pool.call(server.address, "test.hang", {}, deadline_s=60))
            await trio.testing.wait_all_tasks_blocked()
            result = await pool.call(server.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
            callers.cancel_scope.cancel()
    assert result == {"echo": {"n": 1}}


async def test_deadline_expiry_leaves_connection_usable(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """A call whose handler never answers raises RpcTimeout; the connection still works."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    async with open_rpc_pool(CLIENT) as pool:
        start = trio.current_time()
        with pytest.raises(RpcTimeout):
            await pool.call(server.address, "test.hang", {}, deadline_s=0.2)
        assert 0.2 <= trio.current_time() - start < 2.0
        result = await pool.call(server.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
        stats = await pool.call(server.address, "admin.stats", {}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": 2}}
    assert stats["connections_accepted"] == 1


async def test_caller_cancel_scope_cancels_call(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """The caller's own cancel scope interrupts a call; later calls work."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    async with open_rpc_pool(CLIENT) as pool:
        with trio.move_on_after(0.1) as scope:
            await pool.call(server.address, "test.hang", {}, deadline_s=60)
        assert scope.cancelled_caught
        result = await pool.call(server.address, "test.echo", {"n": 3}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": 3}}


async def test_application_error_and_handler_crash(
    sock_dir: Path, nursery: trio.Nursery, service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """ApplicationError travels as its code; any other exception is 'internal' and logged."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    async with open_rpc_pool(CLIENT) as pool:
        with pytest.raises(RpcRemoteError) as rejected:
            await pool.call(server.address, "test.reject", {}, deadline_s=DEADLINE_S)
        with pytest.raises(RpcRemoteError) as crashed:
            await pool.call(server.address, "test.crash", {}, deadline_s=DEADLINE_S)
        with pytest.raises(RpcRemoteError) as bad_result:
            await pool.call(server.address, "test.not_a_map", {}, deadline_s=DEADLINE_S)
        with pytest.raises(RpcRemoteError) as unknown:
            await pool.call(server.address, "test.nope", {}, deadline_s=DEADLINE_S)
        result = await pool.call(server.address, "test.echo", {"n": 4}, deadline_s=DEADLINE_S)
    assert (rejected.value.code, rejected.value.message) == ("wrong-group", "not my shard")
    assert crashed.value.code == "internal"
    assert "boom" in crashed.value.message
    assert bad_result.value.code == "internal"
    assert unknown.value.code == "unknown-method"
    assert result == {"echo": {"n": 4}}
    crash_lines = [r for r in caplog.records if r.name == "diskv.net" and "boom" in r.getMessage()]
    assert len(crash_lines) == 1
    assert "\n" not in crash_lines[0].getMessage()


async def test_call_to_absent_server_fails_at_once_then_backs_off(sock_dir: Path) -> None:
    """No socket file: RpcUnavailable at once, and again at once during the backoff."""
    address = f"unix:{sock_dir}/absent"
    async with open_rpc_pool(CLIENT) as pool:
        start = trio.current_time()
        for _ in range(5):
            with pytest.raises(RpcUnavailable) as failed:
                await pool.call(address, "test.echo", {}, deadline_s=DEADLINE_S)
            assert not isinstance(failed.value, RpcTimeout)
        assert trio.current_time() - start < 1.0


async def test_reconnect_after_server_restart(sock_dir: Path, service: Any) -> None:
    """A server that stops fails the calls at once; once it is back, calls succeed again."""
    address = f"unix:{sock_dir}/s1"
    async with open_rpc_pool(CLIENT) as pool:
        async with trio.open_nursery() as first:
            await start_server(first, address, service)
            assert await pool.call(address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
            first.cancel_scope.cancel()
        assert not await trio.Path(address.removeprefix("unix:")).exists()
        with pytest.raises(RpcUnavailable):
            await pool.call(address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
        async with trio.open_nursery() as second:
            await start_server(second, address, service)
            # Calls fail fast during the reconnect backoff (at most 1 s), then succeed.
            result = None
            with trio.fail_after(3):
                while result is None:
                    try:
                        result = await pool.call(
                            address, "test.echo", {"n": 3}, deadline_s=DEADLINE_S
                        )
                    except RpcUnavailable:
                        await trio.sleep(0.01)
            second.cancel_scope.cancel()
    assert result == {"echo": {"n": 3}}
    assert service.executed == [1, 3]


async def test_server_stop_fails_calls_in_flight(sock_dir: Path, service: Any) -> None:
    """Calls waiting on a connection fail with RpcUnavailable (not a timeout) when it breaks."""
    address = f"unix:{sock_dir}/s1"
    outcome: list[BaseException] = []
    server = RpcServer(address, SERVER, service.handlers(), roles=EVERYONE)
    server_scope = trio.CancelScope()

    async def run_server(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        with server_scope:
            await server.serve(task_status=task_status)

    async with open_rpc_pool(CLIENT) as pool:

        async def waiting_call() -> None:
            try:
                await pool.call(address, "test.hang", {}, deadline_s=30)
            except RpcUnavailable as exc:
                outcome.append(exc)

        async with trio.open_nursery() as tasks:
            await tasks.start(run_server)
            tasks.start_soon(waiting_call)
            tasks.start_soon(waiting_call)
            await trio.testing.wait_all_tasks_blocked()
            server_scope.cancel()
    assert len(outcome) == 2
    assert not any(isinstance(exc, RpcTimeout) for exc in outcome)


async def test_unix_socket_file_lifecycle(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """A stale socket file is replaced; a regular file is refused; ours is removed on exit,
    but a file that replaced it is left alone."""
    path = sock_dir / "s1"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    async with trio.open_nursery() as servers:
        await start_server(servers, f"unix:{path}", service)
        async with open_rpc_pool(CLIENT) as pool:
            assert await pool.call(f"unix:{path}", "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
        servers.cancel_scope.cancel()
    assert not path.exists()

    async with trio.open_nursery() as servers:
        await start_server(servers, f"unix:{path}", service)
        path.unlink()
        path.write_text("not ours")
        servers.cancel_scope.cancel()
    assert path.read_text() == "not ours"

    with pytest.raises(FileExistsError):
        await start_server(nursery, f"unix:{path}", service)
    assert path.read_text() == "not ours"


async def test_handler_names_are_checked(service: Any) -> None:
    """Reserved or duplicate method names are refused at registration."""
    server = RpcServer("unix:/tmp/unused", SERVER, service.handlers(), roles=EVERYONE)
    with pytest.raises(ValueError, match="reserved"):
        server.add_handlers({"admin.mine": service.echo}, roles=EVERYONE)
    with pytest.raises(ValueError, match="already"):
        server.add_handlers({"test.echo": service.echo}, roles=EVERYONE)
    server.add_handlers({"test.more": service.echo}, roles=EVERYONE)


async def test_call_to_own_server(sock_dir: Path, nursery: trio.Nursery, service: Any) -> None:
    """A process calling its own server address makes an ordinary call."""
    faults = net.Faults()
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service, faults=faults)
    async with open_rpc_pool(SERVER, faults=faults) as pool:
        result = await pool.call(server.address, "test.echo", {"n": 5}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": 5}}
    assert faults.rpc_count["test.echo"] == 1


async def test_args_too_large_or_unencodable(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """Arguments CBOR cannot carry are the caller's error, raised before anything is sent."""
    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    async with open_rpc_pool(CLIENT) as pool:
        with pytest.raises(Exception, match="serialize|encode"):
            await pool.call(server.address, "test.echo", {"x": object()}, deadline_s=DEADLINE_S)
        assert await pool.call(server.address, "test.echo", {"n": 6}, deadline_s=DEADLINE_S)


async def test_calls_in_flight_per_connection_are_bounded(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """Beyond CALLS_IN_FLIGHT_MAX running requests the server stops reading the connection
    (backpressure) instead of starting more handlers; the rest start as slots free up."""
    from diskv_trio.net._limits import CALLS_IN_FLIGHT_MAX

    server = await start_server(nursery, f"unix:{sock_dir}/s1", service)
    extra = 20
    async with open_rpc_pool(CLIENT) as pool:
        async with trio.open_nursery() as callers:
            for _ in range(CALLS_IN_FLIGHT_MAX + extra):
                callers.start_soon(
                    lambda: pool.call(server.address, "test.hang", {}, deadline_s=30)
                )
            await trio.testing.wait_all_tasks_blocked()
            assert server.faults.rpc_count["test.hang"] == CALLS_IN_FLIGHT_MAX
            service.never.set()
    assert server.faults.rpc_count["test.hang"] == CALLS_IN_FLIGHT_MAX + extra
