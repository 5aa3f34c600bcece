"""Moving a replica's applied state to a peer, in chunks that fit in frames.

Rules kept here:
- The source encodes its state once per transfer and serves it in chunks of at most
  `CHUNK_BYTES_MAX`, so a state of any size crosses frames far below the frame cap, and a
  retry of one chunk does not re-encode the whole state.
- The receiver checks the total length and a CRC32C of the whole encoding before decoding.
- A source keeps at most `TRANSFERS_MAX` encodings, each for at most `TRANSFER_TTL_S`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import crc32c
import trio

from diskv_trio import _entropy
from diskv_trio.net import ApplicationError, RpcPool

from ._storage import decode_stored

CHUNK_BYTES_MAX = 8 * 1024 * 1024
"""One chunk per frame: well below the 64 MiB frame cap, and small enough to retry cheaply."""

TRANSFERS_MAX = 4
"""Encodings kept at once by a source: each may be as large as the whole state."""

TRANSFER_TTL_S = 120.0
"""An encoding not asked for within this long is dropped."""

CHUNK_DEADLINE_S = 30.0
"""Deadline for fetching one chunk."""


class StateTransferError(Exception):
    """Raised when a fetched state is incomplete or does not match its checksum."""


@dataclass
class _Encoding:
    data: bytes
    crc: int
    applied: int
    expires: float


class StateTransferSource:
    """Serves `rsm.fetch_state`: the applied state from `snapshot()`, chunk by chunk."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot
        self._encodings: OrderedDict[str, _Encoding] = OrderedDict()

    def handle(self, args: dict[str, Any]) -> dict[str, Any]:
        now = trio.current_time()
        for key in [k for k, e in self._encodings.items() if e.expires < now]:
            del self._encodings[key]
        transfer = args.get("transfer")
        offset = args.get("offset", 0)
        if not isinstance(offset, int) or offset < 0:
            raise ApplicationError("ErrBadRequest", "offset must be a non-negative integer")
        if transfer is None:
            state = self._snapshot()
            data = cbor2.dumps(state)
            transfer = _entropy.token_hex(8)
            self._encodings[transfer] = _Encoding(
                data, crc32c.crc32c(data), int(state["applied"]), now + TRANSFER_TTL_S
            )
            while len(self._encodings) > TRANSFERS_MAX:
                self._encodings.popitem(last=False)
        encoding = self._encodings.get(transfer) if isinstance(transfer, str) else None
        if encoding is None:
            raise ApplicationError("ErrNotReady", "unknown or expired state transfer; start again")
        encoding.expires = now + TRANSFER_TTL_S
        return {
            "transfer": transfer,
            "applied": encoding.applied,
            "total": len(encoding.data),
            "crc": encoding.crc,
            "offset": offset,
            "chunk": encoding.data[offset : offset + CHUNK_BYTES_MAX],
        }


async def fetch_state(pool: RpcPool, address: str) -> dict[str, Any]:
    """Fetch and check a peer's applied state (`{"applied": n, "machine": ...}`).

    Raises:
        StateTransferError: the chunks do not add up or fail the checksum.
        RpcUnavailable, RpcRemoteError: the peer could not serve it.
    """
    first = await pool.call(address, "rsm.fetch_state", {}, deadline_s=CHUNK_DEADLINE_S)
    transfer, total, crc = first.get("transfer"), first.get("total"), first.get("crc")
    chunk = first.get("chunk")
    if (
        not isinstance(transfer, str)
        or not isinstance(total, int)
        or not isinstance(crc, int)
        or not isinstance(chunk, bytes)
    ):
        raise StateTransferError(f"{address} answered the state transfer in an unknown format")
    parts = [chunk]
    received = len(chunk)
    while received < total:
        reply = await pool.call(
            address,
            "rsm.fetch_state",
            {"transfer": transfer, "offset": received},
            deadline_s=CHUNK_DEADLINE_S,
        )
        chunk = reply.get("chunk", b"")
        if not isinstance(chunk, bytes) or not chunk:
            raise StateTransferError(f"{address} sent an empty chunk at offset {received}")
        parts.append(chunk)
        received += len(chunk)
    data = b"".join(parts)
    if len(data) != total or crc32c.crc32c(data) != crc:
        raise StateTransferError(f"state from {address} failed its length or checksum check")
    try:
        state = decode_stored(data)
    except Exception as exc:  # a checksummed but undecodable state: a peer's bug
        raise StateTransferError(f"state from {address} does not decode: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("applied"), int):
        raise StateTransferError(f"state from {address} is malformed")
    return state
