"""The sans-I/O parts: address parsing, frame splitting and message validation."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from diskv_trio.net import FRAME_BYTES_MAX, PROTOCOL_VERSION, Identity, ProtocolError, parse_address
from diskv_trio.net._protocol import (
    ConnectionError_,
    FrameDecoder,
    Reply,
    Request,
    encode_frame,
    parse_hello,
    parse_hello_reply,
    parse_reply,
    parse_request,
)

ADDRESS_CASES = [
    ("unix:/tmp/x/sock", "unix:/tmp/x/sock"),
    ("unix:relative.sock", "unix:relative.sock"),
    ("127.0.0.1:7000", "127.0.0.1:7000"),
    ("localhost:0", "localhost:0"),
    ("[::1]:80", "[::1]:80"),
]


@pytest.mark.parametrize(("text", "canonical"), ADDRESS_CASES)
def test_parse_address_valid(text: str, canonical: str) -> None:
    """Valid addresses parse, and print back in their canonical spelling."""
    assert str(parse_address(text)) == canonical


BAD_ADDRESSES = [
    ("", "empty"),
    (" 127.0.0.1:1", "whitespace"),
    ("unix:", "empty socket path"),
    ("unix:/" + "x" * 200, "AF_UNIX allows"),
    ("127.0.0.1", "expected"),
    (":80", "expected"),
    ("host:port", "not a decimal"),
    ("host:-1", "not a decimal"),
    ("host:65536", "out of range"),
    ("::1:80", "brackets"),
    ("[]:80", "empty IPv6"),
    ("a/b:80", "invalid host"),
]


@pytest.mark.parametrize(("text", "reason"), BAD_ADDRESSES)
def test_parse_address_invalid(text: str, reason: str) -> None:
    """Each bad address raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=reason):
        parse_address(text)


def test_identity_is_validated() -> None:
    """Identities hold non-empty strings and are frozen."""
    ident = Identity("c", "peer", "n1")
    with pytest.raises(ValueError):
        Identity("c", "", "n1")
    with pytest.raises(AttributeError):
        ident.role = "client"  # type: ignore[misc]


def test_frames_split_at_any_byte_boundary() -> None:
    """Messages come out whole and in order however the bytes are chunked."""
    messages: list[dict[Any, Any]] = [{"i": n, "m": "x", "a": {"v": "y" * n}} for n in range(20)]
    data = b"".join(encode_frame(m) for m in messages)
    for chunk in (1, 3, 7, 64, len(data)):
        decoder = FrameDecoder()
        out = []
        for start in range(0, len(data), chunk):
            decoder.feed(data[start : start + chunk])
            while (message := decoder.next_message()) is not None:
                out.append(message)
        decoder.check_eof()
        assert out == messages


BAD_FRAMES = [
    ((FRAME_BYTES_MAX + 1).to_bytes(4, "big"), "exceeds"),
    (b"\x00\x00\x00\x01\xff", "not valid CBOR"),
    (b"\x00\x00\x00\x01\x01", "expected a map"),
    (b"\x00\x00\x00\x02\xa0\xa0", "trailing"),
    (len(cbor2.dumps([[]] * 2)).to_bytes(4, "big") + cbor2.dumps([[]] * 2), "expected a map"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_FRAMES)
def test_bad_frames_raise(data: bytes, reason: str) -> None:
    """Each malformed frame raises ProtocolError, after which the decoder refuses input."""
    decoder = FrameDecoder()
    decoder.feed(data)
    with pytest.raises(ProtocolError, match=reason):
        decoder.next_message()
    with pytest.raises(ProtocolError):
        decoder.next_message()


def test_truncated_frame_at_eof() -> None:
    """End of stream inside a frame is a ProtocolError; at a frame boundary it is not."""
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1})[:-1])
    assert decoder.next_message() is None
    with pytest.raises(ProtocolError, match="inside a frame"):
        decoder.check_eof()


def test_encode_refuses_oversized_frame() -> None:
    """Sending more than FRAME_BYTES_MAX is the caller's error."""
    with pytest.raises(ValueError, match="FRAME_BYTES_MAX"):
        encode_frame({"v": b"x" * (FRAME_BYTES_MAX + 1)})


def test_message_parsing() -> None:
    """Requests, replies and hellos parse into their types; wrong types raise ProtocolError."""
    assert parse_request({"i": 3, "m": "kv.get", "a": {"k": 1}}) == Request(3, "kv.get", {"k": 1})
    for bad in ({"i": True, "m": "x", "a": {}}, {"i": 1, "m": "", "a": {}}, {"i": 1, "m": "x"}):
        with pytest.raises(ProtocolError):
            parse_request(bad)
    assert parse_reply({"i": 1, "r": {}}) == Reply(1, {}, None)
    assert parse_reply({"i": 1, "e": {"code": "c", "message": "m"}}) == Reply(1, None, ("c", "m"))
    assert parse_reply({"e": {"code": "protocol", "message": "m"}}) == ConnectionError_(
        "protocol", "m"
    )
    bad_replies: list[dict[str, Any]] = [
        {"i": 1},
        {"i": 1, "r": []},
        {"i": 1, "e": {"code": 1, "message": "m"}},
    ]
    for bad in bad_replies:
        with pytest.raises(ProtocolError):
            parse_reply(bad)
    hello = parse_hello(
        {"version": PROTOCOL_VERSION, "cluster": "c", "role": "client", "id": "x", "nonce": b"n" * 32}
    )
    assert hello.identity == Identity("c", "client", "x")
    assert hello.proof is None
    with pytest.raises(ProtocolError):
        parse_hello({"version": "1"})
    assert parse_hello_reply({"code": "auth", "message": "no"}) == ConnectionError_("auth", "no")
    with pytest.raises(ProtocolError):
        parse_hello_reply({"version": PROTOCOL_VERSION + 1, "cluster": "c", "role": "r", "id": "i"})
