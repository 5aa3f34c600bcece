"""Results of a linearizability check: the verdict, per key and for the whole history."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._lin_history import Operation


class Verdict(enum.Enum):
    """Outcome of a check."""

    OK = "ok"
    """Every key has a linearization."""
    ILLEGAL = "illegal"
    """Some key has none: the history is not linearizable."""
    UNKNOWN = "unknown"
    """The time budget (or the search's configuration limit) ran out before a verdict; says
    nothing either way."""


@dataclass(frozen=True, slots=True)
class PartialLinearization:
    """The longest linearizable prefix found for a key: where the search got stuck.

    Attributes:
        key: the key.
        linearized: operations of the prefix, in linearization order.
        state: the key's value after the prefix (None: absent).
        remaining: the key's checked operations not in the prefix, in call order; for an
            ILLEGAL key, none of those that may come next fits `state`.
    """

    key: str
    linearized: tuple[Operation, ...]
    state: str | None
    remaining: tuple[Operation, ...]


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The check of one key.

    Attributes:
        key: the key.
        verdict: this key's verdict.
        ops: every operation on the key, in call order (as given, unknown gets included).
        checked_count: how many of `ops` the search had to place (the rest were unknown
            outcomes that cannot matter).
        configurations: distinct (linearized set, state) pairs visited.
        elapsed_s: time spent on this key.
        partial: the longest linearizable prefix found (None when the key was not searched).
    """

    key: str
    verdict: Verdict
    ops: tuple[Operation, ...]
    checked_count: int
    configurations: int
    elapsed_s: float
    partial: PartialLinearization | None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The check of a whole history.

    Attributes:
        verdict: OK, ILLEGAL or UNKNOWN (see `Verdict`).
        failing_key: for ILLEGAL, the failing key with the fewest operations; for UNKNOWN, the
            first key the budget ran out on; None for OK.
        failing_ops: all operations on `failing_key`, in call order.
        partial: the longest linearizable prefix found for `failing_key`.
        keys: the per-key results, in the order checked (fewest operations first); keys not
            reached before an ILLEGAL verdict are absent.
        elapsed_s: total time of the check.
    """

    verdict: Verdict
    failing_key: str | None
    failing_ops: tuple[Operation, ...]
    partial: PartialLinearization | None
    keys: tuple[KeyResult, ...]
    elapsed_s: float
