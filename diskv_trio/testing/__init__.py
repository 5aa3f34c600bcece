"""Test support for diskv-trio: the linearizability checker used by the crash sessions.

The public names live in `diskv_trio.testing.linearizability` and are re-exported here.
"""

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
    "save_history",
    "to_porcupine_json",
    "write_porcupine_json",
    "write_report",
]
