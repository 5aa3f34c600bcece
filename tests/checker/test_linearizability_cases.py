"""Hand-written histories with a known verdict, one key unless said otherwise.

Each case is a short history written as (kind, value-or-output, call, return) tuples; a return
of None is an unknown outcome, a known get of None read an absent key. The table drives `check_history` and compares the verdict; a
few cases also check which linearization was found.
"""

from __future__ import annotations

import pytest

from diskv_trio.testing import (
    InvalidOperationError,
    Operation,
    Verdict,
    check_history,
)

Spec = tuple[str, str | None, float, float | None]


def _history(*specs: Spec, key: str = "k") -> list[Operation]:
    """Operations from (kind, value-or-output, call, ret); client ids follow the order."""
    ops = []
    for client, (kind, text, call, ret) in enumerate(specs):
        if kind == "get":
            ops.append(Operation(client, "get", key, None, text, call, ret))
        else:
            ops.append(Operation(client, kind, key, text, None, call, ret))  # type: ignore[arg-type]
    return ops


CASES: dict[str, tuple[list[Spec], Verdict]] = {
    # Linearizable.
    "empty-key-reads-absent": ([("get", None, 0, 1)], Verdict.OK),
    "absent-is-not-empty": ([("get", "", 0, 1)], Verdict.ILLEGAL),
    "empty-value-is-present": ([("put", "", 0, 1), ("get", "", 2, 3)], Verdict.OK),
    "empty-value-is-not-absent": ([("append", "", 0, 1), ("get", None, 2, 3)], Verdict.ILLEGAL),
    "sequential-put-get": ([("put", "x", 0, 1), ("get", "x", 2, 3)], Verdict.OK),
    "read-concurrent-with-put-sees-old": ([("put", "x", 0, 10), ("get", None, 1, 2)], Verdict.OK),
    "read-concurrent-with-put-sees-new": ([("put", "x", 0, 10), ("get", "x", 1, 2)], Verdict.OK),
    "concurrent-appends-either-order": (
        [("append", "a", 0, 5), ("append", "b", 0, 5), ("get", "ba", 6, 7)], Verdict.OK),
    "touching-intervals-are-concurrent": (
        [("append", "a", 0, 5), ("get", None, 5, 6)], Verdict.OK),
    "put-resets-appends": (
        [("append", "a", 0, 1), ("put", "x", 2, 3), ("append", "b", 4, 5), ("get", "xb", 6, 7)],
        Verdict.OK),
    # Not linearizable.
    "stale-read": ([("put", "x", 0, 1), ("put", "y", 2, 3), ("get", "x", 4, 5)], Verdict.ILLEGAL),
    "lost-append": (
        [("append", "a", 0, 1), ("append", "b", 2, 3), ("get", "a", 4, 5)], Verdict.ILLEGAL),
    "duplicated-append": ([("append", "a", 0, 1), ("get", "aa", 2, 3)], Verdict.ILLEGAL),
    "reordered-appends": (
        [("append", "a", 0, 1), ("append", "b", 2, 3), ("get", "ba", 4, 5)], Verdict.ILLEGAL),
    "value-never-written": ([("put", "x", 0, 1), ("get", "z", 2, 3)], Verdict.ILLEGAL),
    "read-before-any-write": ([("get", "x", 0, 1), ("put", "x", 2, 3)], Verdict.ILLEGAL),
    "read-goes-back-in-time": (
        [("put", "x", 0, 10), ("get", "x", 1, 2), ("get", None, 3, 4)], Verdict.ILLEGAL),
    "appends-lost-across-put": (
        [("put", "x", 0, 1), ("append", "b", 2, 3), ("get", "x", 4, 5)], Verdict.ILLEGAL),
    # Unknown outcomes: may take effect at any time after the call, or never.
    "unknown-append-read-later": ([("append", "a", 0, None), ("get", "a", 5, 6)], Verdict.OK),
    "unknown-append-never-read": ([("append", "a", 0, None), ("get", None, 5, 6)], Verdict.OK),
    "unknown-append-read-twice-over": (
        [("append", "a", 0, None), ("get", "aa", 5, 6)], Verdict.ILLEGAL),
    "unknown-append-appears-then-vanishes": (
        [("append", "a", 0, None), ("get", "a", 5, 6), ("get", None, 7, 8)], Verdict.ILLEGAL),
    "unknown-append-absent-then-appears": (
        [("append", "a", 0, None), ("get", None, 5, 6), ("get", "a", 7, 8)], Verdict.OK),
    "unknown-append-not-before-its-call": (
        [("get", "a", 0, 1), ("append", "a", 2, None)], Verdict.ILLEGAL),
    "unknown-put-read-then-overwritten": (
        [("put", "x", 0, None), ("get", "x", 1, 2), ("put", "y", 3, 4), ("get", "y", 5, 6)],
        Verdict.OK),
    "unknown-put-vanishes": (
        [("put", "x", 0, None), ("get", "x", 1, 2), ("get", None, 3, 4)], Verdict.ILLEGAL),
    "unknown-get-constrains-nothing": ([("put", "x", 0, 1), ("get", None, 2, None)], Verdict.OK),
    "unknown-append-between-known-ones": (
        [("append", "a", 0, 1), ("append", "b", 2, None), ("append", "c", 3, 4),
         ("get", "abc", 5, 6)], Verdict.OK),
    "unknown-append-cannot-fill-a-gap-out-of-order": (
        [("append", "a", 0, 1), ("append", "c", 2, 3), ("append", "b", 4, None),
         ("get", "abc", 5, 6)], Verdict.ILLEGAL),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_history(name: str) -> None:
    """Each table case gets its expected verdict; an illegal one names its key and ops."""
    specs, expected = CASES[name]
    ops = _history(*specs)
    result = check_history(ops, timeout_s=10)
    assert result.verdict is expected, name
    if expected is Verdict.ILLEGAL:
        assert result.failing_key == "k"
        assert sorted(result.failing_ops, key=id) == sorted(ops, key=id)
        assert result.partial is not None
        assert len(result.partial.linearized) < len(ops)
    else:
        assert result.failing_key is None
        assert result.failing_ops == ()


def test_concurrent_ops_linearizable_in_one_order_only() -> None:
    """A long append `a` overlaps a short append `b`; reads of "ba" force b before a.

    The found linearization (the partial of an OK key is the whole one) must put b first.
    """
    ops = _history(("append", "a", 0, 10), ("append", "b", 1, 2), ("get", "ba", 3, 4),
                   ("get", "ba", 11, 12))
    result = check_history(ops, timeout_s=10)
    assert result.verdict is Verdict.OK
    partial = result.keys[0].partial
    assert partial is not None
    assert [op.value or op.output for op in partial.linearized] == ["b", "a", "ba", "ba"]
    assert partial.state == "ba"
    # The same shape with b's interval before a's call allows only a-after-b as well, so a
    # read of "ab" once both are done is illegal.
    flipped = _history(("append", "b", 0, 1), ("append", "a", 2, 10), ("get", "ab", 11, 12))
    assert check_history(flipped, timeout_s=10).verdict is Verdict.ILLEGAL


def test_explicit_unknown_outcome_ignores_return_time() -> None:
    """outcome="unknown" with a return time: the op may still take effect after it, or never."""
    never = [Operation(0, "append", "k", "a", None, 0, 1, "unknown"),
             Operation(1, "get", "k", None, None, 5, 6)]
    late = [Operation(0, "append", "k", "a", None, 0, 1, "unknown"),
            Operation(1, "get", "k", None, None, 5, 6), Operation(2, "get", "k", None, "a", 7, 8)]
    known = [Operation(0, "append", "k", "a", None, 0, 1),
             Operation(1, "get", "k", None, None, 5, 6)]
    assert check_history(never, timeout_s=10).verdict is Verdict.OK
    assert check_history(late, timeout_s=10).verdict is Verdict.OK
    assert check_history(known, timeout_s=10).verdict is Verdict.ILLEGAL


def test_keys_are_checked_independently_and_smallest_failure_reported() -> None:
    """P-compositionality: keys do not constrain each other; of two failing keys, the one with
    fewer ops is reported, with only its own ops."""
    fine = _history(("put", "x", 0, 1), ("get", "x", 2, 3), key="fine")
    big_bad = _history(("put", "x", 0, 1), ("put", "y", 2, 3), ("get", "x", 4, 5),
                       ("get", "y", 6, 7), key="big")
    small_bad = _history(("append", "a", 0, 1), ("get", "aa", 2, 3), key="small")
    # Across keys the real-time order would be violated if the keys were one register.
    cross = _history(("put", "1", 0, 1), key="p") + _history(("get", None, 2, 3), key="q")
    assert check_history(fine + cross, timeout_s=10).verdict is Verdict.OK
    result = check_history(big_bad + fine + small_bad, timeout_s=10)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failing_key == "small"
    assert {op.key for op in result.failing_ops} == {"small"}
    assert len(result.failing_ops) == 2


def test_empty_history_is_ok() -> None:
    result = check_history([], timeout_s=1)
    assert result.verdict is Verdict.OK
    assert result.keys == ()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"kind": "remove"}, "kind"),
        ({"kind": "delete", "output": ""}, "bool output"),
        ({"kind": "cas", "value": "x", "output": None}, "bool output"),
        ({"kind": "put", "value": "x", "output": None, "expected": "y"}, "expected"),
        ({"kind": "put", "value": None}, "value"),
        ({"kind": "get", "value": "x"}, "no value"),
        ({"kind": "get", "output": 5}, "output"),
        ({"kind": "append", "value": "a", "output": "a"}, "no output"),
        ({"ret": -1.0}, "before call"),
        ({"call": float("nan")}, "finite"),
        ({"outcome": "maybe"}, "outcome"),
    ],
)
def test_malformed_operation_is_refused(fields: dict[str, object], reason: str) -> None:
    """Operations validate their fields when built (the checker never sees a malformed one)."""
    base: dict[str, object] = {"client_id": 0, "kind": "get", "key": "k", "value": None,
                               "output": "", "call": 0.0, "ret": 1.0}
    base.update(fields)
    with pytest.raises(InvalidOperationError, match=reason):
        Operation(**base)  # type: ignore[arg-type]


def _op(kind: str, call: float, ret: float | None, value: str | None = None,
        output: object = None, expected: str | None = None) -> Operation:
    return Operation(0, kind, "k", value, output, call, ret, expected=expected)  # type: ignore[arg-type]


MODEL_CASES: dict[str, tuple[list[Operation], Verdict]] = {
    "delete-existing-then-absent": (
        [_op("put", 0, 1, "x"), _op("delete", 2, 3, output=True), _op("get", 4, 5)], Verdict.OK),
    "delete-reports-absent-key": ([_op("delete", 0, 1, output=False)], Verdict.OK),
    "delete-cannot-find-a-key-never-written": (
        [_op("delete", 0, 1, output=True)], Verdict.ILLEGAL),
    "read-after-delete-sees-old-value": (
        [_op("put", 0, 1, "x"), _op("delete", 2, 3, output=True), _op("get", 4, 5, output="x")],
        Verdict.ILLEGAL),
    "cas-absent-writes-once": (
        [_op("cas", 0, 5, "a", True), _op("cas", 0, 5, "b", True), _op("get", 6, 7, output="a")],
        Verdict.ILLEGAL),  # both claim to have written where only the first can
    "cas-absent-one-winner": (
        [_op("cas", 0, 5, "a", True), _op("cas", 0, 5, "b", False), _op("get", 6, 7, output="a")],
        Verdict.OK),
    "cas-expected-value": (
        [_op("put", 0, 1, "x"), _op("cas", 2, 3, "y", True, "x"), _op("get", 4, 5, output="y")],
        Verdict.OK),
    "cas-failed-must-not-write": (
        [_op("put", 0, 1, "x"), _op("cas", 2, 3, "y", False, "z"), _op("get", 4, 5, output="y")],
        Verdict.ILLEGAL),
    "cas-expected-empty-is-not-absent": (
        [_op("cas", 0, 1, "y", True, ""), _op("get", 2, 3, output="y")], Verdict.ILLEGAL),
    "unknown-cas-may-take-effect": (
        [_op("put", 0, 1, "x"), _op("cas", 2, None, "y", None, "x"), _op("get", 5, 6, output="y")],
        Verdict.OK),
    "unknown-delete-may-not-happen": (
        [_op("put", 0, 1, "x"), _op("delete", 2, None), _op("get", 5, 6, output="x"),
         _op("get", 7, 8)], Verdict.OK),
    "lost-cas-increment": (
        [_op("put", 0, 1, "0"), _op("cas", 2, 4, "1", True, "0"), _op("cas", 2, 4, "1", True, "0"),
         _op("get", 5, 6, output="1")], Verdict.ILLEGAL),
}


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_delete_and_cas_cases(name: str) -> None:
    """Absent vs empty, delete's "existed" and cas's "written" are part of the model."""
    ops, expected = MODEL_CASES[name]
    assert check_history(ops, timeout_s=10).verdict is expected, name
