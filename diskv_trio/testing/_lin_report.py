"""Explaining a failed check: a readable report, and Porcupine's JSON for cross-checking.

Porcupine's JSON operation format (its Go ``Operation``: ``ClientId``, ``Input``, ``Call``,
``Output``, ``Return``), as written by `to_porcupine_json`:

- ``ClientId``: `Operation.client_id`.
- ``Input``: ``{"Op": 0 | 1 | 2, "Key": key, "Value": value}`` with 0 = get, 1 = put,
  2 = append (the ``kvInput`` of Porcupine's own key/value tests); a get's ``Value`` is ``""``.
- ``Output``: ``{"Value": output}`` for a get, ``null`` for a put or append.
- ``Call`` / ``Return``: integer nanoseconds (``round(seconds * 1e9)``). An unknown outcome
  returns at `PORCUPINE_RETURN_UNKNOWN` (Go's ``math.MaxInt64``), as Porcupine models an
  operation that may take effect at any later time or never.
- Unknown-outcome gets are left out: they constrain nothing, and Porcupine's model would
  treat them as reads of ``""``.

The model to check it with in Go is Porcupine's kv model: state ``""``; get: ``Output.Value ==
state``; put: state = ``Input.Value``; append: state += ``Input.Value``; partitioned by ``Key``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Final

from ._lin_history import InvalidOperationError, Kind, Operation
from ._lin_model import step as model_step
from ._lin_result import CheckResult, PartialLinearization, Verdict

PORCUPINE_RETURN_UNKNOWN: Final = 2**63 - 1
"""``Return`` of an operation whose outcome is unknown: Go's ``math.MaxInt64``, after every
other event."""

_PORCUPINE_OPS: Final[dict[str, int]] = {"get": 0, "put": 1, "append": 2}
_PORCUPINE_KINDS: Final[dict[int, Kind]] = {0: "get", 1: "put", 2: "append"}

VALUE_CHARS_MAX: Final = 100
"""Longest value shown whole in a report; longer ones (appends make long values) show their
head and tail, where a lost or extra append is usually visible, and their length."""

REPORT_CANDIDATES_MAX: Final = 50
"""Most "could not come next" operations listed in a report, to keep it readable."""


def to_porcupine_json(ops: Iterable[Operation]) -> list[dict[str, Any]]:
    """The operations as Porcupine JSON operation objects (see the module docstring)."""
    records: list[dict[str, Any]] = []
    for op in ops:
        if op.kind == "get" and op.unknown:
            continue
        if op.kind not in _PORCUPINE_OPS or (op.kind == "get" and op.output is None):
            raise ValueError("Porcupine's key/value model has no delete, compare-and-set or absent key")
        records.append({
            "ClientId": op.client_id,
            "Input": {"Op": _PORCUPINE_OPS[op.kind], "Key": op.key, "Value": op.value or ""},
            "Call": _nanoseconds(op.call),
            "Output": {"Value": op.output} if op.kind == "get" else None,
            "Return": (
                PORCUPINE_RETURN_UNKNOWN if op.unknown or op.ret is None
                else _nanoseconds(op.ret)
            ),
        })
    return records


def from_porcupine_json(records: Iterable[dict[str, Any]]) -> list[Operation]:
    """Operations from `to_porcupine_json`'s objects (times back in seconds).

    Raises:
        InvalidOperationError: a record does not have the expected shape.
    """
    ops: list[Operation] = []
    for record in records:
        try:
            kind = _PORCUPINE_KINDS[record["Input"]["Op"]]
            unknown = record["Return"] == PORCUPINE_RETURN_UNKNOWN
            output = record["Output"]["Value"] if kind == "get" and not unknown else None
            ops.append(Operation(
                client_id=record["ClientId"],
                kind=kind,
                key=record["Input"]["Key"],
                value=None if kind == "get" else record["Input"]["Value"],
                output=output,
                call=record["Call"] / 1e9,
                ret=None if unknown else record["Return"] / 1e9,
                outcome="unknown" if unknown else "ok",
            ))
        except (KeyError, TypeError) as exc:
            raise InvalidOperationError(f"not a Porcupine kv operation: {record!r} ({exc})") from None
    return ops


def write_porcupine_json(ops: Iterable[Operation], path: str | os.PathLike[str]) -> None:
    """Write `to_porcupine_json(ops)` to `path` as one JSON array."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump(to_porcupine_json(ops), out, ensure_ascii=False, indent=1)
        out.write("\n")


def write_report(result: CheckResult, path: str | os.PathLike[str]) -> None:
    """Write `format_report(result)` to `path`."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(format_report(result))


def format_report(result: CheckResult) -> str:
    """A readable account of a check: for a failure, the failing key's history (one op per line
    with client, call and return times, input and output), the longest linearization found, the
    value after it, and the operations none of which can come next."""
    lines = [f"linearizability check: {result.verdict.value.upper()}"]
    lines.append(
        f"{len(result.keys)} keys checked in {result.elapsed_s:.3f} s, "
        + ", ".join(f"{key.key!r}: {key.verdict.value}" for key in result.keys[:20])
        + (" ..." if len(result.keys) > 20 else "")
    )
    if result.failing_key is None:
        return "\n".join(lines) + "\n"

    key_result = next(key for key in result.keys if key.key == result.failing_key)
    ops = result.failing_ops
    lines.append("")
    lines.append(
        f"key {result.failing_key!r}: {len(ops)} ops, {key_result.checked_count} placed by the "
        f"search, {key_result.configurations} configurations in {key_result.elapsed_s:.3f} s"
    )
    if result.verdict is Verdict.UNKNOWN:
        lines.append("the search gave up on this key (time budget or configuration limit)")
    origin = min((op.call for op in ops), default=0.0)
    lines.append(f"times are seconds after {origin!r}")

    partial = result.partial
    index_of = {id(op): index for index, op in enumerate(ops)}
    step_of: dict[int, int] = {}
    considered: set[int] = set()
    if partial is not None:
        step_of = {index_of[id(op)]: step for step, op in enumerate(partial.linearized, start=1)}
        considered = {index_of[id(op)] for op in partial.linearized + partial.remaining}

    lines.append("")
    lines.append("history, in call order (step = place in the longest linearization found):")
    lines.append(f"{'#':>6} {'client':>6} {'call':>12} {'return':>12} {'step':>6}  operation")
    for index, op in enumerate(ops):
        ret = "unknown" if op.unknown else f"{op.ret - origin:.6f}"  # type: ignore[operator]
        place = str(step_of.get(index, "-"))
        note = ""
        if partial is not None and index not in considered:
            note = "   (ignored: no get can have observed it)"
        lines.append(
            f"{index:>6} {op.client_id:>6} {op.call - origin:>12.6f} {ret:>12} {place:>6}  "
            f"{_describe(op)}{note}"
        )

    if partial is None:
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append(
        f"longest linearization found: {len(partial.linearized)} of "
        f"{len(partial.linearized) + len(partial.remaining)} ops"
    )
    state: str | None = None
    for step, op in enumerate(partial.linearized, start=1):
        state = model_step(state, op)[1]
        lines.append(f"{step:>6}. #{index_of[id(op)]:<6} {_describe(op):<40}  value {_show(state)}")
    assert state == partial.state
    lines.append(f"value after it: {_show(partial.state)}")
    if result.verdict is Verdict.ILLEGAL:
        candidates = _candidates(partial)
        lines.append("")
        lines.append("none of these may come next (they are called before the first return):")
        for op in candidates[:REPORT_CANDIDATES_MAX]:
            why = ""
            if op.kind == "get" and isinstance(op.output, str) and partial.state is not None:
                why = f"   ({_difference(partial.state, op.output)})"
            lines.append(f"       #{index_of[id(op)]:<6} {_describe(op)}{why}")
        if len(candidates) > REPORT_CANDIDATES_MAX:
            lines.append(f"       ... and {len(candidates) - REPORT_CANDIDATES_MAX} more")
    return "\n".join(lines) + "\n"


def _candidates(partial: PartialLinearization) -> list[Operation]:
    """The remaining ops that may be linearized next: called before the first remaining return."""
    first_return = min(
        (op.ret for op in partial.remaining if not op.unknown and op.ret is not None),
        default=float("inf"),
    )
    return [op for op in partial.remaining if op.call <= first_return]


def _describe(op: Operation) -> str:
    if op.kind == "get":
        return "get -> " + ("(unknown)" if op.unknown else _show(op.output))
    if op.kind == "delete":
        return "delete" + (" (unknown outcome)" if op.unknown else f" -> existed {op.output}")
    if op.kind == "cas":
        want = "absent" if op.expected is None else _show(op.expected)
        done = " (unknown outcome)" if op.unknown else f" -> wrote {op.output}"
        return f"cas {want} -> {_show(op.value)}{done}"
    return f"{op.kind} {_show(op.value or '')}" + (" (unknown outcome)" if op.unknown else "")


def _show(text: str | bool | None) -> str:
    if text is None:
        return "(absent)"
    if isinstance(text, bool) or len(text) <= VALUE_CHARS_MAX:
        return repr(text)
    half = VALUE_CHARS_MAX // 2
    return f"{text[:half]!r}...{text[-half:]!r} ({len(text)} chars)"


def _difference(state: str, output: str) -> str:
    """Where a get's output first differs from the value: the hint a reader needs first."""
    common = 0
    for expected, seen in zip(state, output, strict=False):
        if expected != seen:
            break
        common += 1
    if common == len(state) == len(output):
        return "equal"
    return f"differs from the value at char {common}; value {len(state)} chars, read {len(output)}"


def _nanoseconds(seconds: float) -> int:
    return round(seconds * 1e9)
