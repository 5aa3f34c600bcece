"""Client histories of Get / Put / Append / Delete / compare-and-set: the operation record,
its recorder, its file format.

Rules this module keeps:

- An `Operation` is validated when built; a malformed one raises `InvalidOperationError`.
- Times are seconds on one clock (the recorder uses `time.monotonic()`); intervals are closed,
  so two operations that touch at one instant are concurrent.
- An operation whose outcome is unknown (``ret is None`` or ``outcome == "unknown"``: the client
  timed out or was killed) may have taken effect at any time after its call, or never.
- A get's output is the value read, None for an absent key; a delete's is True if the key
  existed, a compare-and-set's True if it wrote (its `value` is the new value, `expected`
  the value it required, None for "absent").
- History files are JSON lines: an optional header line ``{"format": "diskv-history",
  "version": 2}``, then one operation per line with the fields of `Operation`. Python floats
  survive the JSON round trip exactly. Version 1 files (from before absent keys, when a get
  of a missing key read "") are refused: their "" would be misread.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

Kind = Literal["get", "put", "append", "delete", "cas"]
Outcome = Literal["ok", "unknown"]

KINDS: Final[tuple[str, ...]] = ("get", "put", "append", "delete", "cas")
OUTCOMES: Final[tuple[str, ...]] = ("ok", "unknown")

HISTORY_FORMAT: Final = "diskv-history"
HISTORY_FORMAT_VERSION: Final = 2


class HistoryError(Exception):
    """Base class of the errors raised by the linearizability checker's history code."""


class InvalidOperationError(HistoryError, ValueError):
    """An operation's fields are inconsistent (bad kind, missing value, return before call...)."""


class HistoryFileError(HistoryError):
    """A history file cannot be parsed; the message names the file and line."""


class RecorderMisuseError(HistoryError):
    """The recorder was called with a token it never issued or that already completed."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One client call on one key, with its interval and result.

    Attributes:
        client_id: the calling client (only used for display and export).
        kind: ``"get"``, ``"put"``, ``"append"``, ``"delete"`` or ``"cas"``.
        key: the key.
        value: the input of a put or append, the new value of a cas; None otherwise.
        output: a known get's value (None: absent), a known delete's or cas's boolean;
            None for put, append and unknown outcomes.
        call: time the call started (seconds).
        ret: time the call returned (seconds), or None if the outcome is unknown.
        outcome: ``"ok"``, or ``"unknown"`` to mark an unknown outcome even though ``ret`` is set.
    """

    client_id: int
    kind: Kind
    key: str
    value: str | None
    output: str | bool | None
    call: float
    ret: float | None
    outcome: Outcome = "ok"
    expected: str | None = None
    """A cas's required value (None: the key must be absent); None for other kinds."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidOperationError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise InvalidOperationError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")
        if not isinstance(self.client_id, int):
            raise InvalidOperationError(f"client_id must be an int, not {self.client_id!r}")
        if not isinstance(self.key, str):
            raise InvalidOperationError(f"key must be a str, not {self.key!r}")
        self._check_fields()
        if not isinstance(self.call, int | float) or not math.isfinite(self.call):
            raise InvalidOperationError(f"call must be a finite number, not {self.call!r}")
        if self.ret is not None:
            if not isinstance(self.ret, int | float) or not math.isfinite(self.ret):
                raise InvalidOperationError(f"ret must be a finite number or None, not {self.ret!r}")
            if self.ret < self.call:
                raise InvalidOperationError(f"ret {self.ret} is before call {self.call}")

    def _check_fields(self) -> None:
        if self.expected is not None and (self.kind != "cas" or not isinstance(self.expected, str)):
            raise InvalidOperationError(f"only a cas has an expected value (str), got {self.expected!r}")
        if self.kind in ("get", "delete"):
            if self.value is not None:
                raise InvalidOperationError(f"a {self.kind} takes no value, got {self.value!r}")
        elif not isinstance(self.value, str):
            raise InvalidOperationError(f"a {self.kind} needs a str value, not {self.value!r}")
        if self.unknown:
            if self.output is not None:
                raise InvalidOperationError(f"an unknown outcome has no output, got {self.output!r}")
        elif self.kind == "get":
            if self.output is not None and not isinstance(self.output, str):
                raise InvalidOperationError(f"a get's output is a str or None, not {self.output!r}")
        elif self.kind in ("delete", "cas"):
            if not isinstance(self.output, bool):
                raise InvalidOperationError(f"a known {self.kind} needs a bool output, not {self.output!r}")
        elif self.output is not None:
            raise InvalidOperationError(f"a {self.kind} has no output, got {self.output!r}")

    @property
    def unknown(self) -> bool:
        """True if the outcome is unknown: the op may have taken effect after its call, or never."""
        return self.ret is None or self.outcome == "unknown"

    def to_json(self) -> dict[str, Any]:
        """The operation as a JSON object (the history file's line format)."""
        return {
            "client_id": self.client_id,
            "kind": self.kind,
            "key": self.key,
            "value": self.value,
            "output": self.output,
            "call": self.call,
            "ret": self.ret,
            "outcome": self.outcome,
            **({"expected": self.expected} if self.kind == "cas" else {}),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Operation:
        """Build an operation from `to_json`'s object.

        Raises:
            InvalidOperationError: a field is missing or wrong.
        """
        try:
            return cls(
                client_id=record["client_id"],
                kind=record["kind"],
                key=record["key"],
                value=record.get("value"),
                output=record.get("output"),
                call=record["call"],
                ret=record.get("ret"),
                outcome=record.get("outcome", "ok"),
                expected=record.get("expected"),
            )
        except KeyError as exc:
            raise InvalidOperationError(f"operation record lacks field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise InvalidOperationError(f"bad operation record: {exc}") from None


def save_history(ops: Iterable[Operation], path: str | os.PathLike[str]) -> None:
    """Write operations to a JSON-lines history file (header line first)."""
    with open(path, "w", encoding="utf-8") as out:
        header = {"format": HISTORY_FORMAT, "version": HISTORY_FORMAT_VERSION}
        out.write(json.dumps(header) + "\n")
        for op in ops:
            out.write(json.dumps(op.to_json(), ensure_ascii=False) + "\n")


def load_history(path: str | os.PathLike[str]) -> list[Operation]:
    """Read a JSON-lines history file written by `save_history` (the header is optional).

    Raises:
        HistoryFileError: a line is not JSON, not an operation, or the header names another
            format or version.
    """
    ops: list[Operation] = []
    with open(path, encoding="utf-8") as source:
        for line_number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            where = f"{os.fspath(path)}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryFileError(f"{where}: not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise HistoryFileError(f"{where}: expected a JSON object")
            if "format" in record:
                if record["format"] == HISTORY_FORMAT and record.get("version") == 1:
                    raise HistoryFileError(
                        f"{where}: history format version 1 (from before absent keys, when a get "
                        "of a missing key read \"\") is not read by this checker"
                    )
                if record["format"] != HISTORY_FORMAT or record.get("version") != HISTORY_FORMAT_VERSION:
                    raise HistoryFileError(
                        f"{where}: unsupported history format {record.get('format')!r} "
                        f"version {record.get('version')!r}"
                    )
                continue
            try:
                ops.append(Operation.from_json(record))
            except InvalidOperationError as exc:
                raise HistoryFileError(f"{where}: {exc}") from None
    return ops


@dataclass(slots=True)
class _Pending:
    client_id: int
    kind: Kind
    key: str
    value: str | None
    call: float
    expected: str | None = None


class HistoryRecorder:
    """Records client calls with their call and return times, for the linearizability check.

    Wrap each client call::

        token = recorder.record_call(client_id, "append", key, value)
        try:
            await kv.append(key, value)
        except BaseException:
            recorder.record_unknown(token)   # killed or timed out: effect unknown
            raise
        recorder.record_return(token, None)

    Calls never completed by `record_return` or `record_unknown` count as unknown outcomes in
    `operations`. Times come from `time.monotonic()` unless a `clock` is given (tests pass a
    fake clock). Single-threaded use (one Trio run) needs no locking.
    """

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else time.monotonic
        self._tokens = itertools.count()
        self._pending: dict[int, _Pending] = {}
        self._done: dict[int, Operation] = {}

    def record_call(
        self, client_id: int, kind: Kind, key: str, value: str | None = None, expected: str | None = None
    ) -> int:
        """Note the start of a call now; returns the token to complete it with.

        Raises:
            InvalidOperationError: bad kind, or a value missing for put/append or given for get.
        """
        now = float(self._clock())
        # Validate now, where the caller's mistake is, rather than at return time.
        samples: dict[str, str | bool] = {"get": "", "delete": True, "cas": True}
        sample = samples.get(kind)
        Operation(client_id, kind, key, value, sample, now, now, expected=expected)
        token = next(self._tokens)
        self._pending[token] = _Pending(client_id, kind, key, value, now, expected)
        return token

    def record_return(self, token: int, output: str | bool | None = None) -> None:
        """Note that the call of `token` returned now with `output` (a get's result, else None).

        Raises:
            RecorderMisuseError: the token is unknown or already completed.
            InvalidOperationError: the output does not fit the kind.
        """
        pending = self._take(token)
        self._done[token] = Operation(
            pending.client_id, pending.kind, pending.key, pending.value, output,
            pending.call, max(pending.call, float(self._clock())), expected=pending.expected,
        )

    def record_unknown(self, token: int) -> None:
        """Note that the call of `token` ended without a known outcome (timeout, crash, cancel).

        Raises:
            RecorderMisuseError: the token is unknown or already completed.
        """
        pending = self._take(token)
        self._done[token] = self._unknown_op(pending)

    def operations(self) -> list[Operation]:
        """All calls so far in call order; calls still in flight are unknown outcomes."""
        ops = dict(self._done)
        for token, pending in self._pending.items():
            ops[token] = self._unknown_op(pending)
        return [ops[token] for token in sorted(ops)]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `operations()` to a JSON-lines history file."""
        save_history(self.operations(), path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> list[Operation]:
        """Read a history file written by `save` (same as `load_history`)."""
        return load_history(path)

    def _take(self, token: int) -> _Pending:
        try:
            return self._pending.pop(token)
        except KeyError:
            state = "already completed" if token in self._done else "never issued"
            raise RecorderMisuseError(f"token {token!r} was {state}") from None

    @staticmethod
    def _unknown_op(pending: _Pending) -> Operation:
        return Operation(
            pending.client_id, pending.kind, pending.key, pending.value, None,
            pending.call, None, "unknown", pending.expected,
        )
