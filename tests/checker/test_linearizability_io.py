"""Recording, saving and exporting histories, and the report of a failed check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import diskv_trio.testing as testing_package
from diskv_trio.testing import (
    PORCUPINE_RETURN_UNKNOWN,
    HistoryFileError,
    HistoryRecorder,
    InvalidOperationError,
    Operation,
    RecorderMisuseError,
    Verdict,
    check_history,
    from_porcupine_json,
    linearizability,
    load_history,
    save_history,
    to_porcupine_json,
    write_porcupine_json,
    write_report,
)


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lost_append_history() -> list[Operation]:
    return [
        Operation(3, "append", "k", "a", None, 10.0, 11.0),
        Operation(4, "append", "k", "b", None, 12.0, 13.0),
        Operation(5, "get", "k", None, "a", 14.0, 15.0),
        Operation(6, "put", "other", "v", None, 10.0, 20.0),
    ]


def test_recorder_times_outcomes_and_pending_calls() -> None:
    clock = FakeClock()
    recorder = HistoryRecorder(clock=clock)
    put = recorder.record_call(1, "put", "k", "x")
    clock.now = 101.0
    get = recorder.record_call(2, "get", "k")
    append = recorder.record_call(3, "append", "k", "y")
    clock.now = 102.5
    recorder.record_return(get, "x")
    recorder.record_return(put)
    recorder.record_unknown(append)
    recorder.record_call(4, "append", "k", "z")  # still in flight
    ops = recorder.operations()
    assert ops == [
        Operation(1, "put", "k", "x", None, 100.0, 102.5),
        Operation(2, "get", "k", None, "x", 101.0, 102.5),
        Operation(3, "append", "k", "y", None, 101.0, None, "unknown"),
        Operation(4, "append", "k", "z", None, 102.5, None, "unknown"),
    ]
    assert check_history(ops, timeout_s=10).verdict is Verdict.OK
    with pytest.raises(RecorderMisuseError, match="already completed"):
        recorder.record_return(get, "x")
    with pytest.raises(RecorderMisuseError, match="never issued"):
        recorder.record_unknown(999)
    with pytest.raises(InvalidOperationError):
        recorder.record_call(5, "remove", "k")  # type: ignore[arg-type]
    with pytest.raises(InvalidOperationError):
        recorder.record_call(5, "put", "k")  # no value


def test_recorder_uses_monotonic_clock_by_default() -> None:
    recorder = HistoryRecorder()
    token = recorder.record_call(0, "get", "k")
    recorder.record_return(token, "")
    (op,) = recorder.operations()
    assert op.ret is not None and op.ret >= op.call > 0


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    recorder = HistoryRecorder(clock=FakeClock())
    recorder.record_call(0, "append", "k", "é\n\"quoted\"")
    ops = _lost_append_history() + recorder.operations()
    ops.append(Operation(7, "get", "k", None, None, 0.1 + 0.2, None))
    path = tmp_path / "history.jsonl"
    recorder.save(tmp_path / "recorder.jsonl")
    save_history(ops, path)
    assert load_history(path) == ops
    assert HistoryRecorder.load(tmp_path / "recorder.jsonl") == recorder.operations()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"format": "diskv-history", "version": 2}
    assert len(lines) == len(ops) + 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"client_id": 0}\n', ":1: operation record lacks field"),
        ('\n{"format": "diskv-history", "version": 2}\nnot json\n', ":3: not JSON"),
        ('{"format": "diskv-history", "version": 1}\n', "version 1"),
        ('{"format": "diskv-history", "version": 9}\n', "unsupported history format"),
        ('[1, 2]\n', "expected a JSON object"),
        ('{"client_id": 0, "kind": "get", "key": "k", "call": 1, "ret": 0, "output": ""}\n',
         "before call"),
    ],
)
def test_load_reports_bad_lines(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HistoryFileError, match=message):
        load_history(path)


def test_porcupine_json_format_and_round_trip(tmp_path: Path) -> None:
    ops = _lost_append_history() + [
        Operation(8, "append", "k", "c", None, 16.0, None),
        Operation(9, "get", "k", None, None, 16.0, None),  # unknown get: left out
        Operation(10, "put", "k", "", None, 1.25, 2.5),
    ]
    records = to_porcupine_json(ops)
    assert len(records) == len(ops) - 1
    assert records[0] == {"ClientId": 3, "Input": {"Op": 2, "Key": "k", "Value": "a"},
                          "Call": 10_000_000_000, "Output": None, "Return": 11_000_000_000}
    assert records[2] == {"ClientId": 5, "Input": {"Op": 0, "Key": "k", "Value": ""},
                          "Call": 14_000_000_000, "Output": {"Value": "a"},
                          "Return": 15_000_000_000}
    assert records[3]["Input"]["Op"] == 1
    assert records[4]["Return"] == PORCUPINE_RETURN_UNKNOWN == 2**63 - 1
    path = tmp_path / "porcupine.json"
    write_porcupine_json(ops, path)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == records
    back = from_porcupine_json(loaded)
    expected = [op for op in ops if not (op.kind == "get" and op.unknown)]
    expected[4] = Operation(8, "append", "k", "c", None, 16.0, None, "unknown")
    assert back == expected
    assert check_history(back, timeout_s=10).verdict is check_history(ops, timeout_s=10).verdict
    with pytest.raises(InvalidOperationError, match="not a Porcupine kv operation"):
        from_porcupine_json([{"ClientId": 0, "Input": {"Op": 7}}])


def test_report_of_a_failure(tmp_path: Path) -> None:
    ops = _lost_append_history() + [Operation(7, "append", "k", "zz", None, 9.0, None)]
    result = check_history(ops, timeout_s=10)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failing_key == "k"
    path = tmp_path / "report.txt"
    write_report(result, path)
    text = path.read_text(encoding="utf-8")
    assert "linearizability check: ILLEGAL" in text
    assert "key 'k': 4 ops" in text
    assert "times are seconds after 9.0" in text
    lines = text.splitlines()
    # One line per op of the failing key: index, client, call, return, step, operation.
    assert any(line.split()[:4] == ["0", "7", "0.000000", "unknown"] and "append 'zz'" in line
               and "ignored" in line for line in lines)
    assert any(line.split()[:4] == ["1", "3", "1.000000", "2.000000"] and "append 'a'" in line
               for line in lines)
    assert any(line.split()[:4] == ["3", "5", "5.000000", "6.000000"] and "get -> 'a'" in line
               for line in lines)
    assert "longest linearization found: 2 of 3 ops" in text
    assert "value after it: 'ab'" in text
    assert "#3" in text.split("none of these may come next")[1]
    assert "differs from the value at char 1" in text
    assert "other" not in text.split("key 'k'")[1]  # only the failing key's history


def test_report_of_long_values_keeps_head_and_tail(tmp_path: Path) -> None:
    long_value = "x" * 150 + "END"
    ops = [Operation(0, "put", "k", long_value, None, 0.0, 1.0),
           Operation(1, "get", "k", None, long_value + "!", 2.0, 3.0)]
    path = tmp_path / "report.txt"
    write_report(check_history(ops, timeout_s=10), path)
    text = path.read_text(encoding="utf-8")
    assert "END'" in text
    assert "(153 chars)" in text
    assert long_value not in text


def test_report_of_a_success_is_short(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    write_report(check_history(_lost_append_history()[:2], timeout_s=10), path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "linearizability check: OK"


def test_main_rechecks_a_saved_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    save_history(_lost_append_history(), bad)
    save_history(_lost_append_history()[:2], good)
    report, porcupine = tmp_path / "report.txt", tmp_path / "porcupine.json"
    assert linearizability.main([str(good)]) == 0
    assert linearizability.main(
        [str(bad), "--report", str(report), "--porcupine", str(porcupine)]) == 1
    assert "illegal" in capsys.readouterr().out
    assert "ILLEGAL" in report.read_text(encoding="utf-8")
    assert len(json.loads(porcupine.read_text(encoding="utf-8"))) == 3
    assert linearizability.main([str(tmp_path / "missing.jsonl")]) == 2


def test_exports() -> None:
    """The package re-exports exactly the public names of the checker module."""
    assert sorted(testing_package.__all__) == sorted(
        name for name in linearizability.__all__ if name != "main")
    for name in testing_package.__all__:
        assert getattr(testing_package, name) is getattr(linearizability, name)
