"""Hostile or broken peers, over raw Unix sockets: each gets a clear error and loses at most
its own connection; a second, well-behaved client is served throughout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio

from diskv_trio.net import (
    CLIENTS,
    FRAME_BYTES_MAX,
    PEERS,
    PROTOCOL_VERSION,
    Credentials,
    HandshakeError,
    Identity,
    RpcServer,
    _auth,
    create_credentials,
    open_rpc_pool,
)

CLUSTER = "test-cluster"
DEADLINE_S = 5.0


def frame(message: Any) -> bytes:
    body = cbor2.dumps(message)
    return len(body).to_bytes(4, "big") + body


def signed_hello(
    server_nonce: bytes, key: bytes | None, *, role: str = "client", sign_as: str | None = None,
    nonce: bytes = b"n" * 32, **overrides: Any,
) -> dict[str, Any]:
    """A hello for `server_nonce`, with a proof made with `key` (None: no proof)."""
    hello: dict[str, Any] = {
        "version": PROTOCOL_VERSION, "cluster": CLUSTER, "role": role, "id": "raw", "nonce": nonce,
    }
    hello.update(overrides)
    if key is not None:
        signed = _auth.transcript(
            hello["cluster"], sign_as or hello["role"], hello["id"], server_nonce, nonce
        )
        hello["proof"] = _auth.prove(key, _auth.CALLER_SIDE, signed)
    return hello


async def read_until_eof(stream: trio.SocketStream) -> list[Any]:
    """Every frame the server sends until it closes the connection."""
    data = bytearray()
    with trio.fail_after(DEADLINE_S):
        try:
            while chunk := await stream.receive_some(65536):
                data += chunk
        except trio.BrokenResourceError:
            pass  # a reset after the server's last frame ends the stream too
    return split_frames(bytes(data))


def split_frames(data: bytes) -> list[Any]:
    messages = []
    while data:
        length = int.from_bytes(data[:4], "big")
        messages.append(cbor2.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return messages


async def read_one(stream: trio.SocketStream) -> Any:
    data = bytearray()
    with trio.fail_after(DEADLINE_S):
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = await stream.receive_some(65536)
            assert chunk, "connection closed early"
            data += chunk
    length = int.from_bytes(data[:4], "big")
    assert len(data) == 4 + length, "more than one frame arrived"
    return cbor2.loads(bytes(data[4:]))


@pytest.fixture
def keys(sock_dir: Path) -> Credentials:
    return create_credentials(sock_dir / "creds")


@pytest.fixture
async def server(sock_dir: Path, nursery: trio.Nursery, service: Any, keys: Credentials) -> RpcServer:
    rpc_server = RpcServer(
        f"unix:{sock_dir}/s1",
        Identity(CLUSTER, "peer", "s1"),
        {"test.echo": service.echo, "test.big": service.big},
        roles=CLIENTS,
        credentials=keys,
    )
    rpc_server.add_handlers({"test.peer_only": service.echo}, roles=PEERS)
    await nursery.start(rpc_server.serve)
    return rpc_server


async def open_challenged(server: RpcServer) -> tuple[trio.SocketStream, bytes]:
    """A raw connection and the server's challenge nonce."""
    stream = await trio.open_unix_socket(server.address.removeprefix("unix:"))
    challenge = await read_one(stream)
    assert challenge["version"] == PROTOCOL_VERSION and len(challenge["challenge"]) == 32
    return stream, challenge["challenge"]


async def open_raw(server: RpcServer, keys: Credentials, role: str = "client") -> trio.SocketStream:
    """A raw connection, after a successful handshake as `role`."""
    stream, server_nonce = await open_challenged(server)
    key = keys.key(role)
    await stream.send_all(frame(signed_hello(server_nonce, key, role=role)))
    reply = await read_one(stream)
    assert {k: v for k, v in reply.items() if k != "proof"} == {
        "version": PROTOCOL_VERSION, "cluster": CLUSTER, "role": "peer", "id": "s1",
    }
    assert key is not None
    signed = _auth.transcript(CLUSTER, role, "raw", server_nonce, b"n" * 32)
    assert _auth.verify(key, _auth.SERVER_SIDE, signed, reply["proof"])
    return stream


async def assert_still_serving(server: RpcServer, keys: Credentials, n: int) -> None:
    async with open_rpc_pool(Identity(CLUSTER, "client", "good"), credentials=keys) as pool:
        result = await pool.call(server.address, "test.echo", {"n": n}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": n}}


def _key(keys: Credentials, role: str) -> bytes:
    key = keys.key(role)
    assert key is not None
    return key


HelloCase = Callable[[bytes, Credentials], bytes]
HELLO_CASES: list[tuple[str, HelloCase, str]] = [
    ("guessed key", lambda n, k: frame(signed_hello(n, b"g" * 32)), "auth"),
    ("no proof", lambda n, k: frame(signed_hello(n, None)), "auth"),
    (
        "client key claiming operator",
        lambda n, k: frame(signed_hello(n, _key(k, "client"), role="operator")),
        "auth",
    ),
    (
        "proof replayed from another connection",
        lambda n, k: frame(signed_hello(b"x" * 32, _key(k, "client"))),
        "auth",
    ),
    (
        "proof for another role's transcript",
        lambda n, k: frame(signed_hello(n, _key(k, "peer"), role="peer", sign_as="client")),
        "auth",
    ),
    ("wrong version", lambda n, k: frame(signed_hello(n, _key(k, "client"), version=PROTOCOL_VERSION + 1)), "version"),
    ("version of another shape", lambda n, k: frame({"version": 99}), "version"),
    ("wrong cluster", lambda n, k: frame(signed_hello(n, _key(k, "client"), cluster="other")), "cluster"),
    ("wrong field types", lambda n, k: frame(signed_hello(n, None, id=5)), "protocol"),
    ("unknown role", lambda n, k: frame(signed_hello(n, None, role="admin")), "protocol"),
    ("id with a newline", lambda n, k: frame(signed_hello(n, None, id="a\nforged log line")), "protocol"),
    ("short nonce", lambda n, k: frame(signed_hello(n, None, nonce=b"n")), "protocol"),
    ("not a map", lambda n, k: frame([1, 2, 3]), "protocol"),
    ("garbage bytes", lambda n, k: b"\x00\x00\x00\x05\xff\xff\xff\xff\xff", "protocol"),
    ("oversized hello", lambda n, k: (FRAME_BYTES_MAX).to_bytes(4, "big"), "protocol"),
]


@pytest.mark.parametrize(("case", "make", "code"), HELLO_CASES, ids=[c[0] for c in HELLO_CASES])
async def test_bad_hello_refused(
    case: str, make: HelloCase, code: str, server: RpcServer, keys: Credentials
) -> None:
    """A bad hello gets one refusal frame with its code, then the connection closes."""
    stream, server_nonce = await open_challenged(server)
    async with stream:
        await stream.send_all(make(server_nonce, keys))
        replies = await read_until_eof(stream)
    assert len(replies) == 1
    assert replies[0]["code"] == code
    assert isinstance(replies[0]["message"], str) and replies[0]["message"]
    await assert_still_serving(server, keys, 1)


REQUEST_CASES = [
    ("garbage bytes", b"\x00\x00\x00\x04\xff\xfe\xfd\xfc", "not valid CBOR"),
    ("text protocol", b"GET / HTTP/1.1\r\n\r\n", "exceeds"),
    ("oversized length", b"\xff\xff\xff\xff", "exceeds"),
    ("not a map", frame(["i", 1]), "expected a map"),
    ("trailing bytes", b"\x00\x00\x00\x02\xa0\x00", "trailing"),
    ("id of wrong type", frame({"i": "one", "m": "test.echo", "a": {}}), "'i'"),
    ("negative id", frame({"i": -1, "m": "test.echo", "a": {}}), "'i'"),
    ("method of wrong type", frame({"i": 1, "m": 7, "a": {}}), "'m'"),
    ("args of wrong type", frame({"i": 1, "m": "test.echo", "a": [1]}), "'a'"),
]


@pytest.mark.parametrize(
    ("case", "data", "reason"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES]
)
async def test_bad_request_closes_only_that_connection(
    case: str, data: bytes, reason: str, server: RpcServer, keys: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broken frame after the hello gets a protocol error frame and its connection closes;
    a good client connected at the same time keeps working."""
    async with open_rpc_pool(Identity(CLUSTER, "client", "bystander"), credentials=keys) as bystander:
        assert await bystander.call(server.address, "test.echo", {"n": 0}, deadline_s=DEADLINE_S)
        async with await open_raw(server, keys) as stream:
            await stream.send_all(data)
            replies = await read_until_eof(stream)
        assert len(replies) == 1
        assert "i" not in replies[0]
        assert replies[0]["e"]["code"] == "protocol"
        assert reason in replies[0]["e"]["message"]
        result = await bystander.call(server.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": 1}}
    warnings = [r for r in caplog.records if r.name == "diskv.net" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    await assert_still_serving(server, keys, 2)


async def test_truncated_frame_is_logged(
    server: RpcServer, keys: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that closes inside a frame costs one log line and nothing else."""
    async with await open_raw(server, keys) as stream:
        await stream.send_all(b"\x00\x00\x01\x00" + b"\xa0" * 10)
        await stream.send_eof()
        replies = await read_until_eof(stream)
    assert replies[0]["e"]["code"] == "protocol"
    assert "closed inside a frame" in replies[0]["e"]["message"]
    await assert_still_serving(server, keys, 3)


async def test_unknown_method_keeps_connection_open(server: RpcServer, keys: Credentials) -> None:
    """An unknown method gets an error reply with its id, and the connection stays usable."""
    async with await open_raw(server, keys) as stream:
        await stream.send_all(frame({"i": 1, "m": "no.such", "a": {}}))
        first = await read_one(stream)
        await stream.send_all(frame({"i": 2, "m": "test.echo", "a": {"n": 9}}))
        second = await read_one(stream)
    assert first["i"] == 1
    assert first["e"]["code"] == "unknown-method"
    assert second == {"i": 2, "r": {"echo": {"n": 9}}}


async def test_pool_reports_hello_refusal(server: RpcServer, keys: Credentials, sock_dir: Path) -> None:
    """A pool with another cluster's keys gets HandshakeError, again during the backoff too."""
    other_keys = create_credentials(sock_dir / "other-creds")
    async with open_rpc_pool(Identity(CLUSTER, "client", "c"), credentials=other_keys) as pool:
        for _ in range(2):
            with pytest.raises(HandshakeError) as refused:
                await pool.call(server.address, "test.echo", {}, deadline_s=DEADLINE_S)
            assert refused.value.code == "auth"
    async with open_rpc_pool(Identity(CLUSTER, "client", "c")) as pool:
        with pytest.raises(HandshakeError) as refused:
            await pool.call(server.address, "test.echo", {}, deadline_s=DEADLINE_S)
        assert refused.value.code == "auth"
    async with open_rpc_pool(Identity("other", "client", "c"), credentials=keys) as pool:
        with pytest.raises(HandshakeError) as refused:
            await pool.call(server.address, "test.echo", {}, deadline_s=DEADLINE_S)
        assert refused.value.code == "cluster"
    await assert_still_serving(server, keys, 4)


async def test_silent_connection_is_closed_after_hello_timeout(
    server: RpcServer, keys: Credentials, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection that never sends its hello is closed (HELLO_TIMEOUT_S, shortened here)."""
    import diskv_trio.net._server_hello as hello_module

    monkeypatch.setattr(hello_module, "HELLO_TIMEOUT_S", 0.05)
    async with await trio.open_unix_socket(server.address.removeprefix("unix:")) as stream:
        replies = await read_until_eof(stream)
    assert [set(r) for r in replies] == [{"version", "challenge"}]
    assert any("no hello" in r.getMessage() for r in caplog.records if r.name == "diskv.net")
    await assert_still_serving(server, keys, 5)
