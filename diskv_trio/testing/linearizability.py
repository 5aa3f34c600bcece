"""Linearizability checker for Get / Put / Append histories, the way Porcupine checks them.

Rules it keeps:

- The model: every key starts as ``""``; put sets it, append concatenates, get must return it
  (a missing key reads as ``""``, as in the course's clerks).
- P-compositionality: a history is linearizable iff each key's sub-history is, so every key is
  searched on its own, smallest first (`_lin_search` holds the search).
- Unknown outcomes (``ret is None`` or ``outcome="unknown"``): the op may take effect at any
  time after its call, or never. An unknown get constrains nothing and is dropped. An unknown
  put or append that no get can have observed is dropped too (see `_unobservable_unknowns`).
- The verdict is OK only when every key was shown linearizable, ILLEGAL as soon as one key is
  shown not to be, and UNKNOWN when the time budget ran out before either: never OK on a
  timeout.

Use it from a crash session::

    recorder = HistoryRecorder()
    ...  # wrap each client call with record_call / record_return / record_unknown
    result = check_history(recorder.operations(), timeout_s=30)
    if result.verdict is Verdict.ILLEGAL:
        write_report(result, "history-report.txt")
        write_porcupine_json(result.failing_ops, "history-porcupine.json")

or offline: ``python -m diskv_trio.testing.linearizability history.jsonl``.
"""

from __future__ import annotations

import argparse
import sys

from ._lin_check import TIMEOUT_S_DEFAULT, check_history
from ._lin_history import (
    HistoryError,
    HistoryFileError,
    HistoryRecorder,
    InvalidOperationError,
    Operation,
    RecorderMisuseError,
    load_history,
    save_history,
)
from ._lin_report import (
    PORCUPINE_RETURN_UNKNOWN,
    format_report,
    from_porcupine_json,
    to_porcupine_json,
    write_porcupine_json,
    write_report,
)
from ._lin_result import CheckResult, KeyResult, PartialLinearization, Verdict

__all__ = [
    "PORCUPINE_RETURN_UNKNOWN",
    "TIMEOUT_S_DEFAULT",
    "CheckResult",
    "HistoryError",
    "HistoryFileError",
    "HistoryRecorder",
    "InvalidOperationError",
    "KeyResult",
    "Operation",
    "PartialLinearization",
    "RecorderMisuseError",
    "Verdict",
    "check_history",
    "format_report",
    "from_porcupine_json",
    "load_history",
    "main",
    "save_history",
    "to_porcupine_json",
    "write_porcupine_json",
    "write_report",
]


def main(argv: list[str] | None = None) -> int:
    """Re-check a saved history file: exit 0 if linearizable, 1 if not, 3 if undecided."""
    parser = argparse.ArgumentParser(
        prog="python -m diskv_trio.testing.linearizability",
        description="Check a JSON-lines Get/Put/Append history for linearizability.",
    )
    parser.add_argument("history", help="history file written by HistoryRecorder.save")
    parser.add_argument("--timeout-s", type=float, default=TIMEOUT_S_DEFAULT,
                        help="time budget in seconds (default %(default)s)")
    parser.add_argument("--report", help="write a report of the failing key to this file")
    parser.add_argument("--porcupine", help="write the failing key's history as Porcupine JSON")
    args = parser.parse_args(argv)
    try:
        ops = load_history(args.history)
    except (OSError, HistoryError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    result = check_history(ops, timeout_s=args.timeout_s)
    print(f"{result.verdict.value}: {len(ops)} ops, {len(result.keys)} keys checked "
          f"in {result.elapsed_s:.2f} s"
          + (f"; key {result.failing_key!r}" if result.failing_key is not None else ""))
    if args.report and result.verdict is not Verdict.OK:
        write_report(result, args.report)
    if args.porcupine and result.verdict is not Verdict.OK:
        write_porcupine_json(result.failing_ops, args.porcupine)
    return {Verdict.OK: 0, Verdict.ILLEGAL: 1, Verdict.UNKNOWN: 3}[result.verdict]


if __name__ == "__main__":
    sys.exit(main())
