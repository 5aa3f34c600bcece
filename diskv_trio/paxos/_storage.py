"""What a `PaxosPeer` needs from its process: a journal and calls to the other peers.

Rules kept here:
- Paxos sees the journal through `PaxosStorage` (typed records in, a shared sync) and the
  network through `PaxosTransport` (a failed or lost call is `PaxosUnreachable`); it
  imports neither the journal nor the RPC layer. The server's wiring implements both
  (`diskv_trio.rsm`); `MemoryStorage` is the in-memory twin for deterministic tests.
- A value is normalised to what every peer sees after the wire before it is proposed.
"""

from __future__ import annotations

from typing import Any, Protocol

import cbor2
import trio

from ._records import PaxosRecord


class PaxosStorage(Protocol):
    """The server's journal, seen narrowly."""

    def append(self, record: PaxosRecord) -> None:
        """Journal `record.to_wire()`, in order with the application's records."""

    async def sync(self) -> None:
        """Return once everything appended so far is durable."""


class PaxosTransport(Protocol):
    """Calls to the other peers of the group."""

    async def call(
        self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float
    ) -> dict[str, Any]:
        """Call `method` on peer `peer`.

        Raises:
            PaxosUnreachable: the call failed, was refused, or its reply was lost.
        """
        ...


class MemoryStorage:
    """In-memory twin of the journal: `records` holds the wire map of everything appended,
    `synced` the count made durable (what a crash would keep)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.synced = 0
        self.sync_count = 0

    def append(self, record: PaxosRecord) -> None:
        self.records.append(cbor2.loads(cbor2.dumps(record.to_wire())))

    async def sync(self) -> None:
        await trio.lowlevel.checkpoint()
        if self.synced < len(self.records):
            self.sync_count += 1
            self.synced = len(self.records)


def normalize_value(value: Any) -> Any:
    """The value as every other peer will see it after the wire (tuples become lists...).

    Raises:
        TypeError: the value cannot be encoded as CBOR.
    """
    try:
        return cbor2.loads(cbor2.dumps(value))
    except cbor2.CBOREncodeError as exc:
        raise TypeError(f"Paxos values must be CBOR-encodable: {exc}") from exc
