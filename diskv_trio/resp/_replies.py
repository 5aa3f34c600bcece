"""Replies as typed records, and their bytes in RESP2 or RESP3.

Rules kept here:
- A command's result is a `Reply` record; only `encode` knows the wire, so one reply
  serves both protocol versions: `NULL` is ``$-1`` in RESP2 and ``_`` in RESP3, a `Map` is a
  flat array in RESP2 and ``%`` in RESP3.
- Simple strings and errors are one line: CR and LF in their text become spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

RESP2: Final = 2
RESP3: Final = 3


@dataclass(frozen=True, slots=True)
class Simple:
    """``+text``: a status such as OK or PONG."""

    text: str


@dataclass(frozen=True, slots=True)
class Error:
    """``-CODE message``: the first word is the code clients match (ERR, NOAUTH, WRONGPASS)."""

    text: str


@dataclass(frozen=True, slots=True)
class Integer:
    value: int


@dataclass(frozen=True, slots=True)
class Bulk:
    """A binary-safe string."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Null:
    """No value: a missing key, a SET NX that did not write."""


@dataclass(frozen=True, slots=True)
class Array:
    items: tuple[Reply, ...]


@dataclass(frozen=True, slots=True)
class Map:
    pairs: tuple[tuple[Reply, Reply], ...]


Reply = Simple | Error | Integer | Bulk | Null | Array | Map

NULL: Final = Null()
OK: Final = Simple("OK")


def bulk_text(text: str) -> Bulk:
    return Bulk(text.encode())


def error(code: str, message: str) -> Error:
    return Error(f"{code} {message}")


def _line(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


def encode(reply: Reply, protocol: int) -> bytes:
    """The bytes of `reply` in RESP `protocol` (2 or 3)."""
    parts: list[bytes] = []
    _encode_into(reply, protocol, parts)
    return b"".join(parts)


def _encode_into(reply: Reply, protocol: int, parts: list[bytes]) -> None:
    if isinstance(reply, Bulk):
        parts += (b"$%d\r\n" % len(reply.data), reply.data, b"\r\n")
    elif isinstance(reply, Simple):
        parts += (b"+", _line(reply.text), b"\r\n")
    elif isinstance(reply, Integer):
        parts.append(b":%d\r\n" % reply.value)
    elif isinstance(reply, Null):
        parts.append(b"_\r\n" if protocol == RESP3 else b"$-1\r\n")
    elif isinstance(reply, Error):
        parts += (b"-", _line(reply.text), b"\r\n")
    elif isinstance(reply, Array):
        parts.append(b"*%d\r\n" % len(reply.items))
        for item in reply.items:
            _encode_into(item, protocol, parts)
    else:
        parts.append((b"%%%d\r\n" if protocol == RESP3 else b"*%d\r\n") % (
            len(reply.pairs) if protocol == RESP3 else 2 * len(reply.pairs)
        ))
        for key, value in reply.pairs:
            _encode_into(key, protocol, parts)
            _encode_into(value, protocol, parts)
