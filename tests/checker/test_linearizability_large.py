"""Large random histories and the time budget.

A history of several thousand operations from 30 clients over 3 keys, generated from a hidden
linearization (see conftest), must check OK well within its budget; the same history with one
read changed to a value never written must be ILLEGAL, blamed on that read's key. A history
built to need an exhaustive search must come back UNKNOWN, quickly, under a tiny budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from diskv_trio.testing import Operation, Verdict, check_history, format_report

HistoryFactory = Callable[..., list[Operation]]
Validator = Callable[[list[Operation], list[Operation]], None]


def test_large_random_history_passes_and_mutated_copy_fails(
    make_history: HistoryFactory, assert_linearization: Validator
) -> None:
    ops = make_history(7, ops_count=6000, keys_count=3, clients_count=30, unknown_fraction=0.02)
    started = time.monotonic()
    result = check_history(ops, timeout_s=60)
    elapsed_s = time.monotonic() - started
    assert result.verdict is Verdict.OK, (result.failing_key, elapsed_s)
    assert sum(len(key.ops) for key in result.keys) == len(ops)
    for key in result.keys:
        assert key.partial is not None
        checked = [op for op in key.ops if not (op.kind == "get" and op.unknown)]
        assert_linearization(checked, list(key.partial.linearized))

    reads = [i for i, op in enumerate(ops) if op.kind == "get" and not op.unknown]
    index = reads[len(reads) // 2]
    read = ops[index]
    assert read.output is not None
    mutated = list(ops)
    mutated[index] = Operation(read.client_id, "get", read.key, None, read.output + "#",
                               read.call, read.ret)
    result = check_history(mutated, timeout_s=60)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failing_key == read.key
    assert mutated[index] in result.failing_ops
    assert result.partial is not None
    assert mutated[index] not in result.partial.linearized


def test_unknown_outcomes_in_large_history(
    make_history: HistoryFactory, assert_linearization: Validator
) -> None:
    """Many unknown outcomes (a tenth of the ops, half of them never applied) on one busy key."""
    ops = make_history(11, ops_count=2000, keys_count=1, clients_count=10,
                       unknown_fraction=0.1)
    assert sum(op.unknown for op in ops) > 100
    result = check_history(ops, timeout_s=60)
    assert result.verdict is Verdict.OK
    partial = result.keys[0].partial
    assert partial is not None
    assert_linearization([op for op in ops if not (op.kind == "get" and op.unknown)],
                         list(partial.linearized))


def _hard_history(appends_count: int) -> list[Operation]:
    """Concurrent appends of "a" and a read of one "a" too many: every subset of the appends
    is a distinct configuration, and all must be tried before the verdict."""
    ops = [Operation(client, "append", "hard", "a", None, 0.0, 1.0)
           for client in range(appends_count)]
    ops.append(Operation(appends_count, "get", "hard", None, "a" * (appends_count + 1), 0.0, 2.0))
    return ops


def test_time_budget_gives_unknown_never_ok() -> None:
    assert check_history(_hard_history(8), timeout_s=30).verdict is Verdict.ILLEGAL
    started = time.monotonic()
    result = check_history(_hard_history(22), timeout_s=0.05)
    elapsed_s = time.monotonic() - started
    assert result.verdict is Verdict.UNKNOWN
    assert result.failing_key == "hard"
    assert elapsed_s < 2.0
    assert result.keys[0].configurations > 0
    assert "gave up on this key" in format_report(result)


def test_illegal_small_key_is_not_masked_by_a_timeout() -> None:
    """Keys are checked smallest first, so an illegal small key is found before the budget is
    spent on a hard one, and ILLEGAL wins over UNKNOWN."""
    bad = [Operation(0, "append", "bad", "a", None, 0.0, 1.0),
           Operation(1, "get", "bad", None, "aa", 2.0, 3.0)]
    result = check_history(_hard_history(22) + bad, timeout_s=0.05)
    assert result.verdict is Verdict.ILLEGAL
    assert result.failing_key == "bad"
