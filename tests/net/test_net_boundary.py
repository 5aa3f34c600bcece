"""The boundary of one RpcServer: roles bound by the handshake, frame limits by role, and
bounds on every resource a connection can hold. Each limit is shortened where a test needs
it, and each case ends with a well-behaved caller being served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio

import diskv_trio.net._server as server_module
from diskv_trio.net import (
    CLIENTS,
    OPERATORS,
    PEERS,
    Credentials,
    HandshakeError,
    Identity,
    RpcRemoteError,
    RpcServer,
    RpcUnavailable,
    create_credentials,
    open_rpc_pool,
)
from diskv_trio.net._cbor_scan import check_item_count
from diskv_trio.net._errors import ProtocolError
from diskv_trio.net._limits import CLIENT_FRAME_ITEMS_MAX, WIRE_DEPTH_MAX
from tests.net.test_net_bad_input import frame, open_raw, read_one, read_until_eof

CLUSTER = "test-cluster"
DEADLINE_S = 5.0


@pytest.fixture
def keys(sock_dir: Path) -> Credentials:
    return create_credentials(sock_dir / "creds")


async def start_server(
    nursery: trio.Nursery, sock_dir: Path, service: Any, keys: Credentials | None
) -> RpcServer:
    server = RpcServer(
        f"unix:{sock_dir}/s1",
        Identity(CLUSTER, "peer", "s1"),
        {"test.echo": service.echo, "test.big": service.big},
        roles=CLIENTS,
        credentials=keys,
    )
    server.add_handlers({"test.peer_only": service.echo}, roles=PEERS)
    server.add_handlers({"test.operator_only": service.echo}, roles=OPERATORS)
    await nursery.start(server.serve)
    return server


@pytest.fixture
async def server(sock_dir: Path, nursery: trio.Nursery, service: Any, keys: Credentials) -> RpcServer:
    return await start_server(nursery, sock_dir, service, keys)


async def call_as(server: RpcServer, keys: Credentials, role: str, method: str) -> dict[str, Any]:
    async with open_rpc_pool(Identity(CLUSTER, role, f"{role}-1"), credentials=keys) as pool:
        return await pool.call(server.address, method, {"n": 1}, deadline_s=DEADLINE_S)


async def assert_serving(server: RpcServer, keys: Credentials) -> None:
    assert await call_as(server, keys, "client", "test.echo") == {"echo": {"n": 1}}


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        ("client", "test.echo", True),
        ("operator", "test.echo", True),
        ("peer", "test.echo", False),
        ("client", "test.peer_only", False),
        ("operator", "test.peer_only", False),
        ("peer", "test.peer_only", True),
        ("client", "test.operator_only", False),
        ("peer", "test.operator_only", False),
        ("operator", "test.operator_only", True),
        ("client", "admin.faults", False),
        ("peer", "admin.faults", False),
        ("operator", "admin.stats", True),
    ],
)
async def test_methods_are_served_to_their_roles_only(
    server: RpcServer, keys: Credentials, service: Any, role: str, method: str, allowed: bool
) -> None:
    if allowed:
        assert await call_as(server, keys, role, method)
    else:
        with pytest.raises(RpcRemoteError) as refused:
            await call_as(server, keys, role, method)
        assert refused.value.code == "forbidden"
        assert method in refused.value.message


async def test_the_handler_sees_the_authenticated_role_and_id(
    server: RpcServer, keys: Credentials, service: Any
) -> None:
    await call_as(server, keys, "peer", "test.peer_only")
    assert (service.contexts[-1].peer_role, service.contexts[-1].peer_id) == ("peer", "peer-1")


async def test_a_caller_with_keys_refuses_a_server_that_cannot_prove_it_has_them(
    sock_dir: Path, nursery: trio.Nursery, service: Any, keys: Credentials
) -> None:
    """A server without the cluster's keys (an impostor at the address) is not trusted."""
    impostor = await start_server(nursery, sock_dir, service, None)
    with pytest.raises(HandshakeError) as refused:
        await call_as(impostor, keys, "client", "test.echo")
    assert refused.value.code == "auth"
    assert service.executed == []


async def test_an_open_server_takes_roles_as_claimed_but_still_by_role(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    open_server = await start_server(nursery, sock_dir, service, None)
    no_keys = Credentials()
    assert await call_as(open_server, no_keys, "peer", "test.peer_only")
    with pytest.raises(RpcRemoteError):
        await call_as(open_server, no_keys, "client", "test.peer_only")


# -- frames a client may not send ----------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_BODIES = [
    ("shared reference", cbor2.dumps(cbor2.CBORTag(28, [1])), "tags"),
    ("bignum", b"\xc2\x49" + b"\x01" * 9, "tags"),
    ("unknown tag", cbor2.dumps(cbor2.CBORTag(9999, 1)), "tags"),
    ("indefinite array", b"\x9f\x01\xff", "indefinite"),
    ("too deep", cbor2.dumps({"i": 1, "m": "test.echo", "a": {"x": nested(WIRE_DEPTH_MAX + 1)}}), "depth"),
    ("a million empty arrays", b"\x9a\x00\x0f\x42\x40" + b"\x80" * 1_000_000, "items"),
    ("many map keys", cbor2.dumps({"i": 1, "m": "test.echo", "a": {i: 0 for i in range(4000)}}), "items"),
]


@pytest.mark.parametrize(("case", "body", "reason"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
async def test_hostile_client_frames_close_the_connection_quickly(
    server: RpcServer, keys: Credentials, case: str, body: bytes, reason: str
) -> None:
    async with await open_raw(server, keys) as stream:
        start = trio.current_time()
        await stream.send_all(len(body).to_bytes(4, "big") + body)
        replies = await read_until_eof(stream)
        elapsed = trio.current_time() - start
    assert replies[0]["e"]["code"] == "protocol"
    assert reason in replies[0]["e"]["message"] or reason == "tags" and "tag" in replies[0]["e"]["message"]
    assert elapsed < 1.0
    await assert_serving(server, keys)


def test_the_item_scan_counts_like_the_decoder() -> None:
    """At the bound a frame passes; one item more is refused; string payloads are skipped."""
    fits = cbor2.dumps([0] * (CLIENT_FRAME_ITEMS_MAX - 1))
    check_item_count(fits, CLIENT_FRAME_ITEMS_MAX)
    with pytest.raises(ProtocolError):
        check_item_count(cbor2.dumps([0] * CLIENT_FRAME_ITEMS_MAX), CLIENT_FRAME_ITEMS_MAX)
    check_item_count(cbor2.dumps({"value": b"\x80" * 5_000_000}), 4)


async def test_a_peer_may_send_what_a_client_may_not(server: RpcServer, keys: Credentials) -> None:
    """Authenticated peers carry log entries of many ops: no item bound for them."""
    args = {"n": list(range(5000))}
    async with open_rpc_pool(Identity(CLUSTER, "peer", "p"), credentials=keys) as pool:
        reply = await pool.call(server.address, "test.peer_only", args, deadline_s=DEADLINE_S)
    assert reply == {"echo": args}


# -- resources -------------------------------------------------------------------------


async def test_unauthenticated_connections_are_capped(
    sock_dir: Path, nursery: trio.Nursery, service: Any, keys: Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_module, "UNAUTHENTICATED_CONNECTIONS_MAX", 3)
    server = await start_server(nursery, sock_dir, service, keys)
    path = server.address.removeprefix("unix:")
    idle = [await trio.open_unix_socket(path) for _ in range(3)]
    for stream in idle:
        assert "challenge" in await read_one(stream)
    async with await trio.open_unix_socket(path) as extra:
        assert (await read_until_eof(extra))[0]["code"] == "busy"
    # To a caller, a full server is a transient failure to try elsewhere, never a fatal one.
    with pytest.raises(RpcUnavailable, match="busy"):
        await assert_serving(server, keys)
    for stream in idle:
        await stream.aclose()
    with trio.fail_after(DEADLINE_S):
        while True:  # the server notices the closes as it reads them
            try:
                await assert_serving(server, keys)
                break
            except RpcUnavailable:
                await trio.sleep(0.01)


async def test_a_half_sent_frame_is_not_held_for_ever(
    server: RpcServer, keys: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "FRAME_STALL_TIMEOUT_S", 0.1)
    async with await open_raw(server, keys) as stream:
        await stream.send_all((10_000_000).to_bytes(4, "big") + b"\xa0" * 1000)
        replies = await read_until_eof(stream)
    assert replies[0]["e"]["code"] == "protocol"
    assert "stalled" in replies[0]["e"]["message"]
    await assert_serving(server, keys)


async def test_an_idle_client_connection_is_closed(
    server: RpcServer, keys: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "CLIENT_IDLE_TIMEOUT_S", 0.1)
    async with await open_raw(server, keys) as stream:
        assert await read_until_eof(stream) == []


async def test_a_caller_that_does_not_read_its_replies_loses_its_connection(
    server: RpcServer, keys: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed as soon as the queue passes its bound, not when a write stall times out."""
    monkeypatch.setattr(server_module, "OUTPUT_BYTES_MAX", 4 * 1024 * 1024)
    monkeypatch.setattr("diskv_trio.net._outbox.WRITE_STALL_TIMEOUT_S", 60.0)
    async with await open_raw(server, keys) as stream:
        requests = b"".join(
            frame({"i": i, "m": "test.big", "a": {"size": 1024 * 1024}}) for i in range(40)
        )
        await stream.send_all(requests)
        with trio.fail_after(DEADLINE_S):
            while True:  # never reads: the server closes once 4 MiB are queued
                try:
                    await stream.send_all(frame({"i": 99, "m": "test.echo", "a": {}}))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                await trio.sleep(0.01)
    await assert_serving(server, keys)
