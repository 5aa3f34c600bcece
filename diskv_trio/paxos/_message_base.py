"""What every Paxos message shares: validation on construction and the field codec.

Each message class lists its fields' kinds in `FIELDS`; this module checks them when a
message is built (a malformed one raises `PaxosProtocolError`, never an assert) and turns
them into their wire form (ballots as `[epoch, round, peer]` lists, rows as lists) and back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._ballot import Ballot
from ._errors import PaxosProtocolError

# Field kinds, named in each message class's FIELDS.
INT = "int"
BALLOT = "ballot"
BALLOT_OR_NONE = "ballot?"
ANY = "any"
BOOL = "bool"
ENTRIES = "entries"  # ((seq, ballot, value), ...): a range promise's accepted values
DECISIONS = "decisions"  # ((seq, value), ...): a range promise's decided values


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise PaxosProtocolError(f"field {name!r} must be an int >= {low}, got {value!r}")


def _check_rows(name: str, rows: Any, width: int) -> None:
    if not isinstance(rows, tuple):
        raise PaxosProtocolError(f"field {name!r} must be a tuple of rows")
    for row in rows:
        if not isinstance(row, tuple) or len(row) != width:
            raise PaxosProtocolError(f"field {name!r}: bad row {row!r:.80}")
        _check_int(name, row[0], 0)
        if width == 3 and not isinstance(row[1], Ballot):
            raise PaxosProtocolError(f"field {name!r}: bad ballot in {row!r:.80}")


class MessageBase:
    """Shared validation: each subclass lists its fields' kinds in `FIELDS`."""

    __slots__ = ()
    KIND: ClassVar[str]
    FIELDS: ClassVar[dict[str, str]]
    src: int
    done: int

    def __post_init__(self) -> None:
        _check_int("src", self.src, 0)
        _check_int("done", self.done, -1)
        for name, kind in self.FIELDS.items():
            value = getattr(self, name)
            if kind == INT:
                _check_int(name, value, -1)
            elif kind == BALLOT:
                if not isinstance(value, Ballot):
                    raise PaxosProtocolError(f"field {name!r} must be a Ballot, got {value!r}")
            elif kind == BALLOT_OR_NONE:
                if value is not None and not isinstance(value, Ballot):
                    raise PaxosProtocolError(f"field {name!r} must be a Ballot or None")
            elif kind == BOOL:
                if not isinstance(value, bool):
                    raise PaxosProtocolError(f"field {name!r} must be a bool, got {value!r}")
            elif kind in (ENTRIES, DECISIONS):
                _check_rows(name, value, 3 if kind == ENTRIES else 2)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"k": self.KIND, "src": self.src, "done": self.done}
        for name, kind in self.FIELDS.items():
            value = getattr(self, name)
            if kind in (BALLOT, BALLOT_OR_NONE) and value is not None:
                value = value.to_wire()
            elif kind == ENTRIES:
                value = [[seq, ballot.to_wire(), v] for seq, ballot, v in value]
            elif kind == DECISIONS:
                value = [[seq, v] for seq, v in value]
            wire[name] = value
        return wire


def rows_from_wire(name: str, raw: Any, with_ballot: bool) -> tuple[tuple[Any, ...], ...]:
    """An `ENTRIES` (`with_ballot`) or `DECISIONS` field from its wire lists."""
    if not isinstance(raw, list):
        raise PaxosProtocolError(f"field {name!r} must be a list")
    rows: list[tuple[Any, ...]] = []
    for row in raw:
        if not isinstance(row, list) or len(row) != (3 if with_ballot else 2):
            raise PaxosProtocolError(f"field {name!r}: bad row {row!r:.80}")
        if with_ballot:
            rows.append((row[0], Ballot.from_wire(row[1]), row[2]))
        else:
            rows.append((row[0], row[1]))
    return tuple(rows)
