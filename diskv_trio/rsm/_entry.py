"""What one decided Paxos value means to the replicated state machine.

Rules kept here:
- A decided value is parsed, never trusted: it may come from a peer's bug, an old version or
  a forged message, and it is replayed from the journal after every restart. `parse_entry`
  returns a `LogEntry` or raises `BadEntryError`; it never raises anything else, and its
  answer depends on the value alone, so every replica reads the same entry the same way.
- The no-op (`NOOP`) and anything that does not parse are applied as an empty batch: the
  instance counts as applied and nothing changes, on every replica alike.
- The ops inside a well-formed entry are kept as they are; each is checked on its own when
  applied (`bad_op_reply`), so one malformed op costs only its own reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BATCH_OPS_MAX = 512
"""Ops in one log entry: bounds the size of one agreement and of one apply step."""

PROPOSER_CHARS_MAX = 64
"""Longest proposer id in an entry (ours are 16 hex characters)."""

BATCH_NUMBER_MAX = 2**63 - 1
"""Largest batch number in an entry: one CBOR uint, never a bignum."""

NOOP: dict[str, Any] = {"noop": True}
"""The value proposed to fill a hole in the log; it applies no op."""

ERR_BAD_OP = "ErrBadOp"
"""Reply code of an op that is malformed or whose apply failed."""

_ENTRY_FIELDS = frozenset({"proposer", "batch", "ops"})


class BadEntryError(ValueError):
    """Raised by `parse_entry` for a decided value that is not a log entry of this format."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decided batch: `proposer`'s batch number `batch`, its ops in order.

    `ops` holds the ops as decided (each may still be malformed); `proposer` is empty for
    the no-op.
    """

    proposer: str
    batch: int
    ops: tuple[object, ...]

    def to_value(self) -> dict[str, Any]:
        """The value to propose for this entry."""
        return {"proposer": self.proposer, "batch": self.batch, "ops": list(self.ops)}


EMPTY_ENTRY = LogEntry("", 0, ())


def parse_entry(value: object) -> LogEntry:
    """The log entry a decided value holds.

    Raises:
        BadEntryError: `value` is neither `NOOP` nor a map of exactly ``proposer`` (a short
            string), ``batch`` (an int >= 1) and ``ops`` (a list of at most
            `BATCH_OPS_MAX` items).
    """
    if not isinstance(value, dict):
        raise BadEntryError(f"entry must be a map, got {type(value).__name__}")
    if value.keys() == NOOP.keys() and value.get("noop") is True:
        return EMPTY_ENTRY
    keys = set(value)  # keys decoded from CBOR are hashable: they are dict keys already
    if keys != _ENTRY_FIELDS:
        raise BadEntryError(f"entry fields must be {sorted(_ENTRY_FIELDS)}")
    proposer, batch, ops = value["proposer"], value["batch"], value["ops"]
    if not isinstance(proposer, str) or not 0 < len(proposer) <= PROPOSER_CHARS_MAX:
        raise BadEntryError(f"entry proposer must be 1..{PROPOSER_CHARS_MAX} characters")
    if not isinstance(batch, int) or isinstance(batch, bool) or not 0 < batch <= BATCH_NUMBER_MAX:
        raise BadEntryError(f"entry batch must be an int in 1..{BATCH_NUMBER_MAX}")
    if not isinstance(ops, list | tuple) or len(ops) > BATCH_OPS_MAX:
        raise BadEntryError(f"entry ops must be a list of at most {BATCH_OPS_MAX} ops")
    return LogEntry(proposer, batch, tuple(ops))


def bad_op_reply(message: str) -> dict[str, Any]:
    """The reply to an op that could not be applied.

    It carries both reply conventions of the machines (shardkv's ``err``, the
    shardmaster's ``ok``/``error``), so each server's handler reports it as a bad op.
    """
    return {"ok": False, "err": ERR_BAD_OP, "error": ERR_BAD_OP, "message": message}
