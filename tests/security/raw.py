"""A hostile caller's end of the wire: raw sockets, hand-made frames, any hello.

The tests of this directory attack real server processes through it. Nothing here goes
through `RpcPool`, so a test can send what no legitimate caller would: a hello for a role
whose key it lacks, frames with tags, indefinite lengths or any nesting, half a frame,
requests whose replies it never reads.

Rules kept here:
- `open_raw` connects and reads the server's first frame (its challenge, or a refusal when
  it turns the connection away) into `RawConnection.greeting`.
- `receive` returns None once the server has closed the connection (end of stream or
  reset), so "the server closed it" is an outcome a test asserts, never an exception.
- Frames are built with cbor2 directly (`frame`, `body_frame`), never with the server's
  encoder, so its limits do not stop a test from sending what it must.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cbor2
import trio

from diskv_trio.net import FRAME_BYTES_MAX, PROTOCOL_VERSION, UnixAddress, _auth, parse_address
from diskv_trio.net._protocol import LENGTH_PREFIX_BYTES, FrameDecoder

RECEIVE_BYTES_MAX = 1024 * 1024
NONCE_BYTES = 32

TRANSPORT_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a socket raises once the other side has reset or closed it."""


def body_frame(body: bytes) -> bytes:
    """`body` behind its u32 big-endian length, whatever it holds."""
    return len(body).to_bytes(LENGTH_PREFIX_BYTES, "big") + body


def frame(message: Any) -> bytes:
    """One frame carrying `message` encoded by cbor2 (tags, any depth and size allowed)."""
    return body_frame(cbor2.dumps(message))


def hello(
    cluster: str,
    role: str,
    node_id: str,
    key: bytes | None,
    server_nonce: bytes,
    *,
    caller_nonce: bytes | None = None,
) -> dict[str, Any]:
    """A caller's hello; with `key` it carries the proof made with it, else none at all."""
    role = str(role)
    nonce = caller_nonce if caller_nonce is not None else secrets.token_bytes(NONCE_BYTES)
    message: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "cluster": cluster,
        "role": role,
        "id": node_id,
        "nonce": nonce,
    }
    if key is not None:
        signed = _auth.transcript(cluster, role, node_id, server_nonce, nonce)
        message["proof"] = _auth.prove(key, _auth.CALLER_SIDE, signed)
    return message


class RawConnection:
    """One Unix-socket connection to a server, driven byte by byte by the test."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.greeting: dict[str, Any] | None = None
        self.closed_by_server = False
        self._decoder = FrameDecoder(FRAME_BYTES_MAX)
        self._next_request_id = 1

    @property
    def challenge(self) -> bytes:
        """The server's challenge nonce (the test fails if it was turned away instead)."""
        assert self.greeting is not None
        assert "challenge" in self.greeting, f"no challenge, got {self.greeting!r}"
        nonce = self.greeting["challenge"]
        assert isinstance(nonce, bytes)
        return nonce

    async def send_bytes(self, data: bytes) -> bool:
        """Send `data`; False if the server has already closed the connection."""
        try:
            await self.stream.send_all(data)
        except TRANSPORT_GONE:
            return False
        return True

    async def send(self, message: Any) -> bool:
        return await self.send_bytes(frame(message))

    async def receive(self, *, timeout_s: float = 5.0) -> dict[str, Any] | None:
        """The next frame from the server, or None once it closed the connection.

        Raises:
            trio.TooSlowError: nothing complete arrived within `timeout_s`.
        """
        with trio.fail_after(timeout_s):
            while True:
                message = self._decoder.next_message()
                if message is not None:
                    return message
                try:
                    data = await self.stream.receive_some(RECEIVE_BYTES_MAX)
                except TRANSPORT_GONE:
                    data = b""
                if not data:
                    self.closed_by_server = True
                    return None
                self._decoder.feed(data)

    async def frames_until_closed(self, *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """Every frame the server still sends before it closes the connection.

        Raises:
            trio.TooSlowError: the connection was still open after `timeout_s`.
        """
        frames: list[dict[str, Any]] = []
        with trio.fail_after(timeout_s):
            while (message := await self.receive(timeout_s=timeout_s)) is not None:
                frames.append(message)
        return frames

    async def hello(
        self, cluster: str, role: str, node_id: str, key: bytes | None
    ) -> dict[str, Any] | None:
        """Answer the challenge as `role`/`node_id`, proving with `key` (None: no proof).

        Returns the server's hello reply or refusal, None if it closed without a word.
        """
        await self.send(hello(cluster, role, node_id, key, self.challenge))
        return await self.receive()

    async def request(self, method: str, args: Any) -> int:
        """Send one request without waiting; return its id."""
        request_id = self._next_request_id
        self._next_request_id += 1
        await self.send({"i": request_id, "m": method, "a": args})
        return request_id

    async def call(self, method: str, args: Any, *, timeout_s: float = 5.0) -> dict[str, Any] | None:
        """Send one request and return the frame that answers it (or speaks about the
        whole connection); None if the server closed the connection instead."""
        request_id = await self.request(method, args)
        while True:
            message = await self.receive(timeout_s=timeout_s)
            if message is None or message.get("i") in (request_id, None):
                return message

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@asynccontextmanager
async def open_raw(address: str) -> AsyncIterator[RawConnection]:
    """Connect to the Unix socket `address` (``unix:/path``) and read the server's greeting."""
    parsed = parse_address(address)
    assert isinstance(parsed, UnixAddress), address
    stream = await trio.open_unix_socket(parsed.path)
    connection = RawConnection(stream)
    try:
        connection.greeting = await connection.receive()
        yield connection
    finally:
        await connection.aclose()


@asynccontextmanager
async def open_authenticated(
    address: str, cluster: str, role: str, key: bytes, *, node_id: str = "intruder"
) -> AsyncIterator[RawConnection]:
    """`open_raw`, then a hello the server accepts (the test fails if it refuses it)."""
    async with open_raw(address) as connection:
        reply = await connection.hello(cluster, role, node_id, key)
        assert reply is not None and "code" not in reply, f"hello refused: {reply!r}"
        yield connection
