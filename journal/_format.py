"""On-disk format of segments and snapshots (pure functions, no I/O).

Record: ``u32 length | u32 crc32c | body``, big-endian, where ``body = type (u8) | lsn (u64) |
payload`` and ``length = len(body)``. The CRC covers the whole body, so a damaged type, LSN or
payload is pinned to its record. A length below `BODY_BYTES_MIN` (in particular 0, the value
of zero-filled space) or above `RECORD_BYTES_MAX` is never valid.

Segment: ``<first-lsn:016x>.log``, records back to back, LSNs consecutive from the first.

Snapshot: ``snap-<lsn:016x>.cbor``, a CBOR map ``{"format": 1, "lsn": lsn, "crc32c": crc,
"state": bytes}`` with ``crc = crc32c(u64 lsn | state)``; written as ``snap-<lsn:016x>.tmp``
first, then renamed.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import cbor2
from crc32c import crc32c

HEADER = struct.Struct(">II")
HEADER_BYTES = HEADER.size
BODY_PREFIX = struct.Struct(">BQ")
BODY_BYTES_MIN = BODY_PREFIX.size
# One record carries one batch of protocol messages; 64 MiB matches the network frame cap,
# and bounds what a damaged length field can make replay allocate.
RECORD_BYTES_MAX = 64 * 1024 * 1024
TYPE_DATA = 1
TYPE_NAMES = {TYPE_DATA: "data"}
SNAPSHOT_FORMAT = 1

_SEGMENT_RE = re.compile(r"^([0-9a-f]{16})\.log$")
_SNAPSHOT_RE = re.compile(r"^snap-([0-9a-f]{16})\.cbor$")
_U64 = struct.Struct(">Q")


def encode_record(lsn: int, payload: bytes, record_type: int = TYPE_DATA) -> bytes:
    """Return the framed bytes of one record."""
    body = BODY_PREFIX.pack(record_type, lsn) + payload
    return HEADER.pack(len(body), crc32c(body)) + body


def segment_name(first_lsn: int) -> str:
    return f"{first_lsn:016x}.log"


def snapshot_name(lsn: int) -> str:
    return f"snap-{lsn:016x}.cbor"


def snapshot_tmp_name(lsn: int) -> str:
    return f"snap-{lsn:016x}.tmp"


def parse_segment_name(name: str) -> int | None:
    """Return the first LSN a segment file name encodes, or None if it is not a segment."""
    match = _SEGMENT_RE.match(name)
    return int(match.group(1), 16) if match else None


def parse_snapshot_name(name: str) -> int | None:
    """Return the LSN a snapshot file name encodes, or None if it is not a snapshot."""
    match = _SNAPSHOT_RE.match(name)
    return int(match.group(1), 16) if match else None


def encode_snapshot(lsn: int, state: bytes) -> bytes:
    crc = crc32c(_U64.pack(lsn) + state)
    return cbor2.dumps({"format": SNAPSHOT_FORMAT, "lsn": lsn, "crc32c": crc, "state": state})


class SnapshotDamagedError(ValueError):
    """A snapshot file does not decode or its CRC does not match (internal)."""


def decode_snapshot(data: bytes, expected_lsn: int) -> bytes:
    """Return the state in a snapshot file, checking framing, LSN and CRC.

    Raises:
        SnapshotDamagedError: anything about the file is wrong.
    """
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on damaged input
        raise SnapshotDamagedError(f"undecodable snapshot: {exc}") from None
    if not isinstance(value, dict):
        raise SnapshotDamagedError("snapshot is not a map")
    state = value.get("state")
    lsn = value.get("lsn")
    crc = value.get("crc32c")
    if value.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotDamagedError(f"unknown snapshot format {value.get('format')!r}")
    if not isinstance(state, bytes) or not isinstance(lsn, int) or not isinstance(crc, int):
        raise SnapshotDamagedError("snapshot fields missing or of the wrong type")
    if lsn != expected_lsn:
        raise SnapshotDamagedError(f"snapshot lsn {lsn} does not match its name ({expected_lsn})")
    if crc32c(_U64.pack(lsn) + state) != crc:
        raise SnapshotDamagedError("snapshot crc32c mismatch")
    return state


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    offset: int
    lsn: int
    record_type: int
    payload: bytes
    size_bytes: int


def check_record_at(data: bytes | memoryview, offset: int) -> tuple[int, int, int] | None:
    """Return (record_type, lsn, total_bytes) if a valid record starts at offset, else None."""
    end = len(data)
    if end - offset < HEADER_BYTES:
        return None
    length, crc = HEADER.unpack_from(data, offset)
    if length < BODY_BYTES_MIN or length > RECORD_BYTES_MAX:
        return None
    body_start = offset + HEADER_BYTES
    if body_start + length > end:
        return None
    view = memoryview(data)[body_start : body_start + length]
    if crc32c(view) != crc:
        return None
    record_type, lsn = BODY_PREFIX.unpack_from(data, body_start)
    if record_type not in TYPE_NAMES:
        return None
    return record_type, lsn, HEADER_BYTES + length
