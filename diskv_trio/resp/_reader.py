"""Bytes in, commands out: hiredis's reader behind a guard that checks only header lines.

Rules kept here:
- A request is what every Redis client sends: an array (``*N``) of 1..`ARGUMENTS_MAX` bulk
  strings (``$L``), each 0..`BULK_BYTES_MAX` bytes, a command at most `COMMAND_BYTES_MAX`
  bytes. Anything else (inline commands, nested arrays, other types) is a protocol error.
- hiredis parses (the C reader redis-py uses: fast, fuzzed, kept by the Redis project). It
  sizes each array from its header and buffers a bulk string until its declared length
  arrives, and hiredis-py exposes neither a maximum element count nor a maximum bulk length.
  So the guard walks the header lines first (skipping payloads by count, never copying) and
  refuses a header beyond a limit before hiredis sees it. A header line must end within
  `HEADER_LINE_BYTES_MAX` bytes.
- After the first error the reader is spent; the commands whole before the bad bytes are
  still handed out, so they are answered before the error.
"""

from __future__ import annotations

from dataclasses import dataclass

import hiredis

from ._errors import RespProtocolError
from ._limits import ARGUMENTS_MAX, BULK_BYTES_MAX, COMMAND_BYTES_MAX

HEADER_LINE_BYTES_MAX = 24
"""``*``/``$``, up to 20 digits and CRLF: longer can only be garbage."""

CRLF = b"\r\n"


class _HeaderGuard:
    """Follows the request grammar over the header lines; payload bytes are only counted."""

    def __init__(self) -> None:
        self._line = b""
        self._arguments_left = 0  # bulk strings still due in the current command
        self._payload_left = 0  # payload bytes (then CRLF) still due in the current bulk string
        self._command_bytes = 0
        self.boundary = 0
        """Offset in the last scanned data just after its last complete command."""

    @property
    def in_command(self) -> bool:
        """True while a command has begun arriving but is not complete."""
        return bool(self._line) or self._arguments_left > 0 or self._payload_left > 0

    def scan(self, data: bytes) -> None:
        """Check `data`, the next bytes of the stream.

        Raises:
            RespProtocolError: a header is malformed or beyond a limit.
        """
        position, size = 0, len(data)
        self.boundary = 0
        while position < size:
            if self._payload_left > 0:
                position = self._skip_payload(data, position)
                continue
            held = len(self._line)
            window = self._line + data[position : position + HEADER_LINE_BYTES_MAX]
            end = window.find(CRLF)
            if end < 0:
                if len(window) >= HEADER_LINE_BYTES_MAX:
                    raise RespProtocolError("header line too long")
                self._take(size - position)
                self._line = window
                return
            self._take(end + 2 - held)
            position += end + 2 - held
            self._line = b""
            self._header(window[:end])

    def _skip_payload(self, data: bytes, position: int) -> int:
        left = self._payload_left
        step = min(left, len(data) - position)
        for offset, byte in ((left - 2, CRLF[0]), (left - 1, CRLF[1])):
            if 0 <= offset < step and data[position + offset] != byte:
                raise RespProtocolError("bulk string not followed by CRLF")
        self._payload_left -= step
        self._take(step)
        if self._payload_left == 0 and self._arguments_left == 0:
            self._command_bytes = 0
            self.boundary = position + step
        return position + step

    def _take(self, count: int) -> None:
        self._command_bytes += count
        if self._command_bytes > COMMAND_BYTES_MAX:
            raise RespProtocolError(f"command longer than {COMMAND_BYTES_MAX} bytes")

    def _header(self, line: bytes) -> None:
        kind, digits = line[:1], line[1:]
        if self._arguments_left == 0:
            if kind != b"*":
                shown = kind.decode("latin-1") if kind else "an empty line"
                raise RespProtocolError(f"expected '*', got '{shown}' (inline commands are not supported)")
            count = _number(digits, "multibulk length")
            if not 1 <= count <= ARGUMENTS_MAX:
                raise RespProtocolError(f"invalid multibulk length (1..{ARGUMENTS_MAX} arguments)")
            self._arguments_left = count
            return
        if kind != b"$":
            raise RespProtocolError(f"expected '$', got '{kind.decode('latin-1')}' (arguments are bulk strings)")
        length = _number(digits, "bulk length")
        if length > BULK_BYTES_MAX:
            raise RespProtocolError(f"invalid bulk length (at most {BULK_BYTES_MAX} bytes)")
        self._arguments_left -= 1
        self._payload_left = length + 2


def _number(digits: bytes, name: str) -> int:
    if not digits or len(digits) > 19 or not digits.isdigit():
        raise RespProtocolError(f"invalid {name}")
    return int(digits)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one `feed` gave: the commands completed, then the error that ended the stream."""

    commands: list[list[bytes]]
    error: RespProtocolError | None = None


class RequestReader:
    """Turns a connection's bytes into commands (argument lists of bytes), in order."""

    def __init__(self) -> None:
        self._guard = _HeaderGuard()
        self._hiredis = hiredis.Reader()
        self._failed: RespProtocolError | None = None

    @property
    def in_command(self) -> bool:
        """True while part of a command is buffered (the stall timeout then applies)."""
        return self._guard.in_command

    def feed(self, data: bytes) -> Parsed:
        """The commands completed by `data`, and the protocol error after them if any.

        The commands whole before bad bytes are still returned, so they are answered before
        the error. After an error the reader is spent: every later call returns it again.
        """
        if self._failed is not None:
            return Parsed([], self._failed)
        try:
            self._guard.scan(data)
        except RespProtocolError as exc:
            self._failed = exc
            data = data[: self._guard.boundary]
        commands: list[list[bytes]] = []
        try:
            self._hiredis.feed(data)
            while (item := self._hiredis.gets()) is not False:
                commands.append(_arguments(item))
        except hiredis.ProtocolError as exc:
            self._failed = RespProtocolError(str(exc))
        return Parsed(commands, self._failed)


def _arguments(item: object) -> list[bytes]:
    # The guard let through only arrays of bulk strings; anything else is our bug.
    assert isinstance(item, list)
    assert all(isinstance(argument, bytes) for argument in item)
    return item
