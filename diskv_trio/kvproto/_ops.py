"""Client ops as typed records: what the client sends, the server proposes and replicas apply.

Rules kept here:
- An op is one of `Get`, `Put`, `Append`, `Delete`, `Cas`, validated on construction; its
  `to_wire()` is both the ``kv.op`` request and the op's form in the log, holding only the
  fields the state machine reads.
- `decode_op` is the one decoder, used by the server on a request and by replicas on a log
  entry: it returns a record or raises `ValueError` naming the bad field, nothing else,
  whatever it is given.
- Keys and values are bytes. Text is accepted where bytes are expected and stored as its
  UTF-8 encoding (lone surrogates kept, as the previous version counted them): this is how
  log entries and snapshots written before values were bytes are read.
- Writes (every op but `Get`) carry a session (`client`, `seq`): applied at most once.
- `Cas` writes `new` only if the key's value is `expected`, or if the key is absent when
  `expected` is None; its two values together fit `CAS_VALUES_BYTES_MAX`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._limits import (
    CAS_VALUES_BYTES_MAX,
    CLIENT_CHARS_MAX,
    KEY_BYTES_MAX,
    NUMBER_MAX,
    VALUE_BYTES_MAX,
)

OP_NAMES = ("get", "put", "append", "delete", "cas")


def is_int(value: object) -> bool:
    """True for a real int (bool is an int subclass but never a valid number here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_bytes(value: object, name: str, bytes_max: int) -> bytes:
    """`value` (bytes, or text as UTF-8) checked against `bytes_max`.

    Raises:
        ValueError: not bytes or str, or too long.
    """
    if isinstance(value, str):
        if len(value) > bytes_max:
            raise ValueError(f"{name} is longer than {bytes_max} bytes, the limit")
        value = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytearray | memoryview):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise ValueError(f"{name} must be bytes or str, got {type(value).__name__}")
    if len(value) > bytes_max:
        raise ValueError(f"{name} is {len(value)} bytes; the limit is {bytes_max}")
    return value


def _exact(value: object, name: str, bytes_max: int) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    as_bytes(value, name, bytes_max)


def check_number(value: object, name: str) -> int:
    """`value` as a sequence or config number, 0..NUMBER_MAX.

    Raises:
        ValueError: not an int, or out of range.
    """
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    assert isinstance(value, int)
    if not 0 <= value <= NUMBER_MAX:
        raise ValueError(f"{name} must be in 0..{NUMBER_MAX}, got {value}")
    return value


def check_client(value: object) -> str:
    """`value` as a client id: 1..CLIENT_CHARS_MAX characters.

    Raises:
        ValueError: not a string of that length.
    """
    if not isinstance(value, str) or not 0 < len(value) <= CLIENT_CHARS_MAX:
        raise ValueError(f"client must be a non-empty string of at most {CLIENT_CHARS_MAX} characters")
    return value


@dataclass(frozen=True, slots=True)
class Get:
    """Read `key`."""

    key: bytes

    def __post_init__(self) -> None:
        _exact(self.key, "key", KEY_BYTES_MAX)

    def to_wire(self) -> dict[str, Any]:
        return {"op": "get", "key": self.key}


@dataclass(frozen=True, slots=True)
class Put:
    """Set `key` to `value`."""

    key: bytes
    value: bytes
    client: str
    seq: int

    def __post_init__(self) -> None:
        _check_write(self.key, self.client, self.seq)
        _exact(self.value, "value", VALUE_BYTES_MAX)

    def to_wire(self) -> dict[str, Any]:
        return {"op": "put", "key": self.key, "value": self.value, "client": self.client, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Append:
    """Append `value` to `key` (an absent key starts empty)."""

    key: bytes
    value: bytes
    client: str
    seq: int

    def __post_init__(self) -> None:
        _check_write(self.key, self.client, self.seq)
        _exact(self.value, "value", VALUE_BYTES_MAX)

    def to_wire(self) -> dict[str, Any]:
        return {"op": "append", "key": self.key, "value": self.value, "client": self.client, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove `key`; the reply says whether it existed."""

    key: bytes
    client: str
    seq: int

    def __post_init__(self) -> None:
        _check_write(self.key, self.client, self.seq)

    def to_wire(self) -> dict[str, Any]:
        return {"op": "delete", "key": self.key, "client": self.client, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Cas:
    """Set `key` to `new` if its value is `expected` (None: if absent); the reply says whether."""

    key: bytes
    expected: bytes | None
    new: bytes
    client: str
    seq: int

    def __post_init__(self) -> None:
        _check_write(self.key, self.client, self.seq)
        _exact(self.new, "new value", VALUE_BYTES_MAX)
        if self.expected is not None:
            _exact(self.expected, "expected value", VALUE_BYTES_MAX)
        size = len(self.new) + len(self.expected or b"")
        if size > CAS_VALUES_BYTES_MAX:
            raise ValueError(
                f"expected and new values are {size} bytes together; the limit is {CAS_VALUES_BYTES_MAX}"
            )

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "cas",
            "key": self.key,
            "expected": self.expected,
            "new": self.new,
            "client": self.client,
            "seq": self.seq,
        }


ClientOp = Get | Put | Append | Delete | Cas
WriteOp = Put | Append | Delete | Cas


def _check_write(key: object, client: object, seq: object) -> None:
    _exact(key, "key", KEY_BYTES_MAX)
    check_client(client)
    check_number(seq, "seq")


def decode_op(args: object) -> ClientOp:
    """The client op `args` (a ``kv.op`` request or a log entry's op) stands for.

    Raises:
        ValueError: not a map, unknown op, or a field missing, mistyped or too large.
    """
    if not isinstance(args, Mapping):
        raise ValueError(f"op must be a map, got {type(args).__name__}")
    name = args.get("op")
    if not isinstance(name, str) or name not in OP_NAMES:
        raise ValueError(f"op must be one of {', '.join(OP_NAMES)}, got {name!r:.80}")
    key = as_bytes(args.get("key"), "key", KEY_BYTES_MAX)
    if name == "get":
        return Get(key)
    client, seq = check_client(args.get("client")), check_number(args.get("seq"), "seq")
    if name == "delete":
        return Delete(key, client, seq)
    if name == "cas":
        if "expected" not in args:
            raise ValueError("cas: missing field 'expected' (null for an absent key)")
        raw = args["expected"]
        expected = None if raw is None else as_bytes(raw, "expected value", VALUE_BYTES_MAX)
        return Cas(key, expected, as_bytes(args.get("new"), "new value", VALUE_BYTES_MAX), client, seq)
    value = as_bytes(args.get("value"), "value", VALUE_BYTES_MAX)
    return (Put if name == "put" else Append)(key, value, client, seq)
