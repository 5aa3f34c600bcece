"""Agreement: no two replicas of a group ever journal different decided values for one
Paxos instance.

Rules kept here:
- The check reads what each replica writes to its journal, as the disk sees it (the record
  format of journal/README.md, Paxos records as `diskv_trio.paxos.record_from_wire` reads
  them), not the replicas' memory: a decision counts once journalled, even if a crash loses
  it afterwards, and a replica later wiped still counts for what it decided before.
- A decide record without its value means "the value I accepted" (`DecideRecord`): it is the
  value of that replica's latest accept record for the instance. A lost disk forgets them.
- The first value journalled as decided for an instance is its value; another value from any
  replica of the same group is a violation, named with both replicas and both values.
- Values are kept as digests of their canonical CBOR, with a short text for reports.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import cbor2
from crc32c import crc32c

from diskv_trio.paxos import AcceptRecord, DecideRecord, PaxosProtocolError, record_from_wire

RECORD_HEADER = struct.Struct(">II")
"""u32 length | u32 crc32c of the body (journal/README.md)."""

BODY_PREFIX = struct.Struct(">BQ")
"""u8 type | u64 lsn, then the payload."""

SUMMARY_CHARS_MAX = 160
"""A value in a report is cut to this many characters."""


def value_digest(value: object) -> bytes:
    return hashlib.blake2b(cbor2.dumps(value, canonical=True), digest_size=16).digest()


def summary(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SUMMARY_CHARS_MAX else text[: SUMMARY_CHARS_MAX - 3] + "..."


@dataclass(frozen=True, slots=True)
class Decision:
    """The first value journalled as decided for one instance of one group."""

    group: int
    instance: int
    digest: bytes
    replica: str
    text: str


class AgreementCheck:
    """Every group's decisions, as journalled by its replicas."""

    def __init__(self) -> None:
        self._decided: dict[tuple[int, int], Decision] = {}
        self.violations: list[str] = []
        self.decide_records = 0
        self.unreadable_records = 0

    @property
    def instances(self) -> int:
        """Instances with a decided value seen so far, over all groups."""
        return len(self._decided)

    def tap(self, group: int, replica: str) -> ReplicaTap:
        """The tap to put on `replica`'s disk."""
        return ReplicaTap(self, group, replica)

    def observe(self, group: int, replica: str, instance: int, value: object) -> None:
        """`replica` journalled `value` as decided for `instance`."""
        self.observe_digest(group, replica, instance, value_digest(value), summary(value))

    def observe_digest(
        self, group: int, replica: str, instance: int, digest: bytes, text: str
    ) -> None:
        """`observe` of a value known by its digest (and its text for a report)."""
        self.decide_records += 1
        first = self._decided.get((group, instance))
        if first is None:
            self._decided[(group, instance)] = Decision(group, instance, digest, replica, text)
        elif first.digest != digest:
            self.violations.append(
                f"group {group} instance {instance}: {first.replica} decided {first.text},"
                f" {replica} decided {text}"
            )


class ReplicaTap:
    """Reads one replica's journal writes (a `_disk.Tap`)."""

    def __init__(self, check: AgreementCheck, group: int, replica: str) -> None:
        self._check = check
        self._group = group
        self._replica = replica
        self._pending = bytearray()
        self._accepted: dict[int, tuple[bytes, str]] = {}  # instance -> (digest, text)

    def forget(self) -> None:
        """The replica lost its disk: what it accepted is gone with it."""
        self._accepted.clear()
        self._pending.clear()

    def __call__(self, data: bytes) -> None:
        buffer = self._pending
        buffer += data
        offset = 0
        while len(buffer) - offset >= RECORD_HEADER.size:
            length, crc = RECORD_HEADER.unpack_from(buffer, offset)
            end = offset + RECORD_HEADER.size + length
            if end > len(buffer):
                break
            body = bytes(buffer[offset + RECORD_HEADER.size : end])
            offset = end
            if length < BODY_PREFIX.size or crc32c(body) != crc:
                self._check.unreadable_records += 1
                continue
            self._record(body[BODY_PREFIX.size :])
        del buffer[:offset]

    def _record(self, payload: bytes) -> None:
        try:
            stored = cbor2.loads(payload)
            record = (
                record_from_wire(stored["px"])
                if isinstance(stored, dict) and "px" in stored
                else None
            )
        except (PaxosProtocolError, ValueError, KeyError, cbor2.CBORDecodeError):
            self._check.unreadable_records += 1
            return
        if isinstance(record, AcceptRecord):
            self._accepted[record.seq] = (value_digest(record.value), summary(record.value))
        elif isinstance(record, DecideRecord):
            if record.carries_value:
                self._check.observe(self._group, self._replica, record.seq, record.value)
            elif record.seq in self._accepted:
                digest, text = self._accepted[record.seq]
                self._check.observe_digest(self._group, self._replica, record.seq, digest, text)
