"""Wire protocol, sans-I/O: frames, hello, requests and replies.

Rules kept here:

- A frame is a u32 big-endian body length followed by a body that is exactly one CBOR map.
  A length over the limit, bytes that are not CBOR, trailing bytes after the map, or a body
  that is not a map is a `ProtocolError`; the connection carrying it is closed.
- CBOR is decoded with every semantic tag refused (no shared references, no cycles, no
  bignums), no indefinite lengths and at most `WIRE_DEPTH_MAX` levels of nesting; frames
  from clients and operators are also bounded in item count before they are decoded.
- The server speaks first: a challenge ``{version, challenge: nonce}``. The caller answers
  with its hello ``{version, cluster, role, id, nonce, proof?}``; the server answers with
  ``{version, cluster, role, id, proof?}`` or a refusal ``{code, message}`` (code
  ``version``, ``auth``, ``cluster`` or ``protocol``) after which it closes. Proofs: `_auth`.
- Request ``{i: id, m: method, a: args}``; reply ``{i, r: result}`` or
  ``{i, e: {code, message}}``. A frame ``{e: {code, message}}`` without ``i`` speaks about
  the whole connection (which the sender then closes).
- Error code ``unavailable`` means "as if the transport failed" (fault injection); the pool
  turns it into `RpcUnavailable`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cbor2

from ._cbor_scan import check_item_count
from ._errors import ProtocolError
from ._limits import FRAME_BYTES_MAX, NAME_CHARS_MAX, NONCE_BYTES, PROTOCOL_VERSION, WIRE_DEPTH_MAX
from ._roles import Role, parse_role

LENGTH_PREFIX_BYTES = 4
REQUEST_ID_MAX = 2**63 - 1
"""Request ids are non-negative and fit a signed 64-bit integer (any CBOR peer can hold them)."""

CODE_UNAVAILABLE = "unavailable"
CODE_UNKNOWN_METHOD = "unknown-method"
CODE_INTERNAL = "internal"
CODE_PROTOCOL = "protocol"
CODE_VERSION = "version"
CODE_AUTH = "auth"
CODE_ROLE = "role"
CODE_BUSY = "busy"
CODE_CLUSTER = "cluster"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a process is, as sent in the hello: its role is one of `Role`."""

    cluster: str
    role: str
    node_id: str

    def __post_init__(self) -> None:
        for name in ("cluster", "role", "node_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > NAME_CHARS_MAX:
                raise ValueError(
                    f"Identity.{name} must be a non-empty string of at most"
                    f" {NAME_CHARS_MAX} characters, got {value!r}"
                )
        if parse_role(self.role) is None:
            raise ValueError(f"Identity.role must be one of {[r.value for r in Role]}, got {self.role!r}")


@dataclass(frozen=True, slots=True)
class Hello:
    """A client's hello as received by a server."""

    version: int
    identity: Identity
    nonce: bytes
    proof: bytes | None


@dataclass(frozen=True, slots=True)
class HelloReply:
    """A server's hello reply: who it is, and its proof when the caller sent one."""

    identity: Identity
    proof: bytes | None


@dataclass(frozen=True, slots=True)
class Request:
    request_id: int
    method: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply: exactly one of `result` and `error` (code, message) is set."""

    request_id: int
    result: dict[str, Any] | None
    error: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class ConnectionError_:
    """An error frame without a request id: the peer is closing the connection."""

    code: str
    message: str


# -- frames -----------------------------------------------------------------------------


def encode_frame(message: dict[Any, Any]) -> bytes:
    """Encode one message as a length-prefixed CBOR frame.

    Raises:
        ValueError: the encoded body exceeds `FRAME_BYTES_MAX` (a caller's mistake).
        cbor2.CBOREncodeError: the message holds a value CBOR cannot carry.
    """
    body = cbor2.dumps(message)
    if len(body) > FRAME_BYTES_MAX:
        raise ValueError(f"frame of {len(body)} bytes exceeds FRAME_BYTES_MAX ({FRAME_BYTES_MAX})")
    return len(body).to_bytes(LENGTH_PREFIX_BYTES, "big") + body


def _refuse_tag(*_args: Any) -> Any:
    raise cbor2.CBORDecodeError("CBOR tags are not accepted")


BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)
"""The tags cbor2 decodes itself; each is overridden to refuse (others reach `tag_hook`)."""

_REFUSE_TAGS = {tag: _refuse_tag for tag in BUILTIN_TAGS}


def decode_body(body: bytes, *, items_max: int | None = None) -> dict[Any, Any]:
    """Decode a frame body that must be exactly one CBOR map (tags refused, depth bounded)."""
    if items_max is not None:
        check_item_count(body, items_max)
    stream = io.BytesIO(body)
    try:
        message = cbor2.CBORDecoder(
            stream,
            semantic_decoders=_REFUSE_TAGS,
            tag_hook=_refuse_tag,
            max_depth=WIRE_DEPTH_MAX,
            allow_indefinite=False,
        ).decode()
    except Exception as exc:  # cbor2 raises several types on hostile input
        raise ProtocolError(f"frame body is not valid CBOR: {exc}") from None
    if stream.tell() != len(body):
        raise ProtocolError(
            f"frame body has {len(body) - stream.tell()} trailing bytes after the CBOR item"
        )
    if not isinstance(message, dict):
        raise ProtocolError(f"frame body is a CBOR {type(message).__name__}, expected a map")
    return message


class FrameDecoder:
    """Split a byte stream into decoded messages.

    Feed bytes with `feed`, take messages with `next_message` until it returns None, and call
    `check_eof` when the stream ends. Any `ProtocolError` leaves the decoder unusable, as the
    connection must be closed.
    """

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX, items_max: int | None = None) -> None:
        assert 0 < frame_bytes_max <= FRAME_BYTES_MAX
        self.frame_bytes_max = frame_bytes_max
        self.items_max = items_max
        self._buffer = bytearray()
        self._failed = False

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_message(self) -> dict[Any, Any] | None:
        """Return the next complete message, or None if more bytes are needed.

        Raises:
            ProtocolError: oversized length, bad CBOR or a body that is not a map.
        """
        if self._failed:
            raise ProtocolError("decoder already failed")
        buffer = self._buffer
        if len(buffer) < LENGTH_PREFIX_BYTES:
            return None
        length = int.from_bytes(buffer[:LENGTH_PREFIX_BYTES], "big")
        if length > self.frame_bytes_max:
            self._failed = True
            raise ProtocolError(
                f"frame length {length} exceeds the limit of {self.frame_bytes_max} bytes"
            )
        end = LENGTH_PREFIX_BYTES + length
        if len(buffer) < end:
            return None
        body = bytes(buffer[LENGTH_PREFIX_BYTES:end])
        del buffer[:end]
        try:
            return decode_body(body, items_max=self.items_max)
        except ProtocolError:
            self._failed = True
            raise

    @property
    def inside_frame(self) -> bool:
        """Some bytes of a frame have arrived, not all of it."""
        return bool(self._buffer)

    def check_eof(self) -> None:
        """Raise `ProtocolError` if the stream ended inside a frame."""
        if self._buffer:
            raise ProtocolError(
                f"connection closed inside a frame ({len(self._buffer)} bytes of it received)"
            )


# -- messages ---------------------------------------------------------------------------


def _name(message: dict[Any, Any], key: str, *, what: str) -> str:
    value = message.get(key)
    if (
        not isinstance(value, str)
        or not value
        or len(value) > NAME_CHARS_MAX
        or not value.isprintable()
    ):
        raise ProtocolError(
            f"{what}: field {key!r} must be a non-empty printable string of at most"
            f" {NAME_CHARS_MAX} characters"
        )
    return value


def _request_id(message: dict[Any, Any], *, what: str) -> int:
    value = message.get("i")
    if type(value) is not int or not 0 <= value <= REQUEST_ID_MAX:
        raise ProtocolError(f"{what}: field 'i' must be an integer in 0..2**63-1")
    return value


def _error_fields(value: Any, *, what: str) -> tuple[str, str]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what}: field 'e' must be a map")
    code, message = value.get("code"), value.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        raise ProtocolError(f"{what}: error 'code' and 'message' must be strings")
    return code, message


def _nonce(message: dict[Any, Any], key: str, *, what: str) -> bytes:
    value = message.get(key)
    if not isinstance(value, bytes) or len(value) != NONCE_BYTES:
        raise ProtocolError(f"{what}: field {key!r} must be {NONCE_BYTES} bytes")
    return value


def _proof(message: dict[Any, Any], *, what: str) -> bytes | None:
    value = message.get("proof")
    if value is not None and (not isinstance(value, bytes) or len(value) > 64):
        raise ProtocolError(f"{what}: field 'proof' must be at most 64 bytes")
    return value


def challenge_message(nonce: bytes) -> dict[str, Any]:
    return {"version": PROTOCOL_VERSION, "challenge": nonce}


def parse_challenge(message: dict[Any, Any]) -> bytes | ConnectionError_:
    """The server's challenge nonce, or its refusal (e.g. too many connections).

    Raises:
        ProtocolError: another version, or not a challenge.
    """
    if "code" in message:
        code, text = _error_fields(message, what="refusal")
        return ConnectionError_(code, text)
    version = message.get("version")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"server speaks protocol version {version!r}, we speak {PROTOCOL_VERSION}")
    return _nonce(message, "challenge", what="challenge")


def hello_message(identity: Identity, nonce: bytes, proof: bytes | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "cluster": identity.cluster,
        "role": identity.role,
        "id": identity.node_id,
        "nonce": nonce,
    }
    if proof is not None:
        message["proof"] = proof
    return message


def hello_reply_message(identity: Identity, proof: bytes | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "cluster": identity.cluster,
        "role": identity.role,
        "id": identity.node_id,
    }
    if proof is not None:
        message["proof"] = proof
    return message


def parse_hello(message: dict[Any, Any]) -> Hello:
    """Parse a caller's hello. The version is read first so that a peer speaking another
    version gets a ``version`` refusal even if the rest of its hello looks different.

    Raises:
        ProtocolError: a field is missing, has the wrong type, or names an unknown role.
    """
    version = message.get("version")
    if type(version) is not int:
        raise ProtocolError("hello: field 'version' must be an integer")
    if version != PROTOCOL_VERSION:
        return Hello(version, Identity("?", Role.CLIENT, "?"), b"", None)
    role = _name(message, "role", what="hello")
    if parse_role(role) is None:
        raise ProtocolError(f"hello: unknown role {role!r}, expected one of {[r.value for r in Role]}")
    identity = Identity(
        _name(message, "cluster", what="hello"), role, _name(message, "id", what="hello")
    )
    return Hello(version, identity, _nonce(message, "nonce", what="hello"), _proof(message, what="hello"))


def parse_hello_reply(message: dict[Any, Any]) -> HelloReply | ConnectionError_:
    """Parse a server's hello reply: its identity and proof, or its refusal.

    Raises:
        ProtocolError: neither a valid identity nor a valid refusal.
    """
    if "code" in message:
        code, text = _error_fields(message, what="hello refusal")
        return ConnectionError_(code, text)
    version = message.get("version")
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise ProtocolError(f"hello reply: version {version!r}, expected {PROTOCOL_VERSION}")
    role = _name(message, "role", what="hello reply")
    if parse_role(role) is None:
        raise ProtocolError(f"hello reply: unknown role {role!r}")
    identity = Identity(
        _name(message, "cluster", what="hello reply"), role, _name(message, "id", what="hello reply")
    )
    return HelloReply(identity, _proof(message, what="hello reply"))


def request_message(request_id: int, method: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"i": request_id, "m": method, "a": args}


def parse_request(message: dict[Any, Any]) -> Request:
    """Parse a request frame.

    Raises:
        ProtocolError: a field is missing or has the wrong type.
    """
    request_id = _request_id(message, what="request")
    method = _name(message, "m", what="request")
    args = message.get("a")
    if not isinstance(args, dict):
        raise ProtocolError("request: field 'a' must be a map")
    return Request(request_id, method, args)


def result_message(request_id: int, result: dict[str, Any]) -> dict[str, Any]:
    return {"i": request_id, "r": result}


def error_message(request_id: int | None, code: str, text: str) -> dict[str, Any]:
    """An error reply to one request, or (request_id None) about the whole connection."""
    error = {"code": code, "message": text}
    if request_id is None:
        return {"e": error}
    return {"i": request_id, "e": error}


def refusal_message(code: str, text: str) -> dict[str, Any]:
    """A server's hello refusal."""
    return {"code": code, "message": text}


def parse_reply(message: dict[Any, Any]) -> Reply | ConnectionError_:
    """Parse a reply frame, or an error frame about the whole connection.

    Raises:
        ProtocolError: a field is missing or has the wrong type.
    """
    if "i" not in message:
        code, text = _error_fields(message.get("e"), what="connection error")
        return ConnectionError_(code, text)
    request_id = _request_id(message, what="reply")
    if "e" in message:
        return Reply(request_id, None, _error_fields(message["e"], what="reply"))
    result = message.get("r")
    if not isinstance(result, dict):
        raise ProtocolError("reply: field 'r' must be a map")
    return Reply(request_id, result, None)
