"""Hostile or broken peers, over raw Unix sockets: each gets a clear error and loses at most
its own connection; a second, well-behaved client is served throughout."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio

from diskv_trio.net import (
    FRAME_BYTES_MAX,
    PROTOCOL_VERSION,
    HandshakeError,
    Identity,
    RpcServer,
    open_rpc_pool,
)

CLUSTER = "test-cluster"
TOKEN = "s3cret"
DEADLINE_S = 5.0


def frame(message: Any) -> bytes:
    body = cbor2.dumps(message)
    return len(body).to_bytes(4, "big") + body


def good_hello(**overrides: Any) -> dict[str, Any]:
    hello = {
        "version": PROTOCOL_VERSION,
        "cluster": CLUSTER,
        "role": "client",
        "id": "raw",
        "token": TOKEN,
    }
    hello.update(overrides)
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
    return cbor2.loads(bytes(data[4:]))


@pytest.fixture
async def server(sock_dir: Path, nursery: trio.Nursery, service: Any) -> RpcServer:
    rpc_server = RpcServer(
        f"unix:{sock_dir}/s1", Identity(CLUSTER, "paxos", "s1"), service.handlers(), token=TOKEN
    )
    await nursery.start(rpc_server.serve)
    return rpc_server


async def open_raw(server: RpcServer) -> trio.SocketStream:
    """A raw connection, after a successful hello."""
    stream = await trio.open_unix_socket(server.address.removeprefix("unix:"))
    await stream.send_all(frame(good_hello()))
    reply = await read_one(stream)
    assert reply == {"version": PROTOCOL_VERSION, "cluster": CLUSTER, "role": "paxos", "id": "s1"}
    return stream


async def assert_still_serving(server: RpcServer, n: int) -> None:
    async with open_rpc_pool(Identity(CLUSTER, "client", "good"), token=TOKEN) as pool:
        result = await pool.call(server.address, "test.echo", {"n": n}, deadline_s=DEADLINE_S)
    assert result == {"echo": {"n": n}}


HELLO_CASES = [
    ("wrong token", frame(good_hello(token="guess")), "token"),
    ("missing token", frame({k: v for k, v in good_hello().items() if k != "token"}), "token"),
    ("wrong version", frame(good_hello(version=PROTOCOL_VERSION + 1)), "version"),
    ("version of another shape", frame({"version": 99}), "version"),
    ("wrong cluster", frame(good_hello(cluster="other")), "cluster"),
    ("wrong field types", frame(good_hello(id=5)), "protocol"),
    ("not a map", frame([1, 2, 3]), "protocol"),
    ("garbage bytes", b"\x00\x00\x00\x05\xff\xff\xff\xff\xff", "protocol"),
    ("oversized hello", (FRAME_BYTES_MAX).to_bytes(4, "big"), "protocol"),
]


@pytest.mark.parametrize(("case", "data", "code"), HELLO_CASES, ids=[c[0] for c in HELLO_CASES])
async def test_bad_hello_refused(case: str, data: bytes, code: str, server: RpcServer) -> None:
    """A bad hello gets one refusal frame with its code, then the connection closes."""
    async with await trio.open_unix_socket(server.address.removeprefix("unix:")) as stream:
        await stream.send_all(data)
        replies = await read_until_eof(stream)
    assert len(replies) == 1
    assert replies[0]["code"] == code
    assert isinstance(replies[0]["message"], str) and replies[0]["message"]
    await assert_still_serving(server, 1)


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
    case: str, data: bytes, reason: str, server: RpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken frame after the hello gets a protocol error frame and its connection closes;
    a good client connected at the same time keeps working."""
    async with open_rpc_pool(Identity(CLUSTER, "client", "bystander"), token=TOKEN) as bystander:
        assert await bystander.call(server.address, "test.echo", {"n": 0}, deadline_s=DEADLINE_S)
        async with await open_raw(server) as stream:
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
    await assert_still_serving(server, 2)


async def test_truncated_frame_is_logged(
    server: RpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that closes inside a frame costs one log line and nothing else."""
    async with await open_raw(server) as stream:
        await stream.send_all(b"\x00\x00\x01\x00" + b"\xa0" * 10)
        await stream.send_eof()
        replies = await read_until_eof(stream)
    assert replies[0]["e"]["code"] == "protocol"
    assert "closed inside a frame" in replies[0]["e"]["message"]
    await assert_still_serving(server, 3)


async def test_unknown_method_keeps_connection_open(server: RpcServer) -> None:
    """An unknown method gets an error reply with its id, and the connection stays usable."""
    async with await open_raw(server) as stream:
        await stream.send_all(frame({"i": 1, "m": "no.such", "a": {}}))
        first = await read_one(stream)
        await stream.send_all(frame({"i": 2, "m": "test.echo", "a": {"n": 9}}))
        second = await read_one(stream)
    assert first["i"] == 1
    assert first["e"]["code"] == "unknown-method"
    assert second == {"i": 2, "r": {"echo": {"n": 9}}}


async def test_pool_reports_hello_refusal(server: RpcServer) -> None:
    """A pool with the wrong token gets HandshakeError, again during the backoff too."""
    async with open_rpc_pool(Identity(CLUSTER, "client", "c"), token="wrong") as pool:
        for _ in range(2):
            with pytest.raises(HandshakeError) as refused:
                await pool.call(server.address, "test.echo", {}, deadline_s=DEADLINE_S)
            assert refused.value.code == "token"
    async with open_rpc_pool(Identity("other", "client", "c"), token=TOKEN) as pool:
        with pytest.raises(HandshakeError) as refused:
            await pool.call(server.address, "test.echo", {}, deadline_s=DEADLINE_S)
        assert refused.value.code == "cluster"
    await assert_still_serving(server, 4)


async def test_silent_connection_is_closed_after_hello_timeout(
    server: RpcServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that never sends its hello is closed (HELLO_TIMEOUT_S, shortened here)."""
    import diskv_trio.net._server as server_module

    monkeypatch.setattr(server_module, "HELLO_TIMEOUT_S", 0.05)
    async with await trio.open_unix_socket(server.address.removeprefix("unix:")) as stream:
        replies = await read_until_eof(stream)
    assert replies == []
    assert any("no hello" in r.getMessage() for r in caplog.records if r.name == "diskv.net")
    await assert_still_serving(server, 5)
