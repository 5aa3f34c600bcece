"""`check_history`: split a history by key, drop what cannot matter, search each key."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

from ._lin_history import Operation
from ._lin_model import fast_path_applies, search_model
from ._lin_result import CheckResult, KeyResult, PartialLinearization, Verdict
from ._lin_search import search_key

TIMEOUT_S_DEFAULT = 60.0
"""Time budget of `check_history` when the caller gives none: long enough for histories of tens
of thousands of ops, short enough that a pathological history cannot stall a test run."""


def check_history(
    ops: Iterable[Operation],
    *,
    timeout_s: float | None = TIMEOUT_S_DEFAULT,
) -> CheckResult:
    """Check a Get / Put / Append / Delete / compare-and-set history for linearizability,
    key by key (see `_lin_model` for the model).

    Args:
        ops: the operations, in any order.
        timeout_s: the time budget for the whole check; None for no limit. Past it the
            verdict is UNKNOWN (unless a key was already found ILLEGAL).

    Returns:
        The verdict, with the smallest failing key's history and the longest linearizable
        prefix found for it.
    """
    started = time.monotonic()
    deadline = math.inf if timeout_s is None else started + timeout_s
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    ordered = sorted(by_key.items(), key=lambda item: (len(item[1]), item[0]))

    results: list[KeyResult] = []
    for key, key_ops in ordered:
        key_ops.sort(key=lambda op: (op.call, math.inf if op.unknown else op.ret))
        results.append(_check_key(key, tuple(key_ops), deadline))
        if results[-1].verdict is Verdict.ILLEGAL:
            break

    elapsed_s = time.monotonic() - started
    for verdict in (Verdict.ILLEGAL, Verdict.UNKNOWN):
        for result in results:
            if result.verdict is verdict:
                return CheckResult(
                    verdict, result.key, result.ops, result.partial, tuple(results), elapsed_s
                )
    return CheckResult(Verdict.OK, None, (), None, tuple(results), elapsed_s)


def _check_key(key: str, ops: tuple[Operation, ...], deadline: float) -> KeyResult:
    """Search one key's history (sorted by call) within the deadline."""
    started = time.monotonic()
    if started > deadline:
        return KeyResult(key, Verdict.UNKNOWN, ops, 0, 0, 0.0, None)
    fast = fast_path_applies(ops)
    # Dropping unobserved writes is sound only where no op reads the state besides gets.
    dropped = _unobservable_unknowns(ops) if fast else set()
    checked = [
        op for index, op in enumerate(ops)
        if index not in dropped and not (op.kind == "get" and op.unknown)
    ]
    outcome = (search_key if fast else search_model)(checked, deadline=deadline)
    verdict = {True: Verdict.OK, False: Verdict.ILLEGAL, None: Verdict.UNKNOWN}[outcome.linearizable]
    in_prefix = set(outcome.longest)
    partial = PartialLinearization(
        key,
        tuple(checked[index] for index in outcome.longest),
        outcome.state_after_longest,
        tuple(op for index, op in enumerate(checked) if index not in in_prefix),
    )
    return KeyResult(
        key, verdict, ops, len(checked), outcome.configurations, time.monotonic() - started, partial
    )


def _unobservable_unknowns(ops: Sequence[Operation]) -> set[int]:
    """Indices of unknown-outcome puts and appends that no get of the key can have observed.

    Dropping them keeps the verdict and spares the search from placing them:

    - An append of ``""`` changes nothing a get can see, unless a get read "" or absent.
    - An append of ``v`` that is no substring of any get's output: in any linearization, no get
      comes after it until the next put (that get's output would contain ``v``), so removing it
      leaves every get's view unchanged. Conversely a linearization without it extends to one
      with it, placed last (an unknown op has no return time).
    - A put of a non-empty ``v`` that is no prefix of any get's output: likewise, no get sees
      the state between it and the next put.

    The outputs are searched joined by NUL; a match across a boundary only keeps an op.
    """
    outputs = {op.output for op in ops if op.kind == "get" and not op.unknown}
    reads_absent_or_empty = None in outputs or "" in outputs
    joined = "\0" + "\0".join(sorted(o for o in outputs if isinstance(o, str)))
    dropped: set[int] = set()
    for index, op in enumerate(ops):
        if not op.unknown or op.kind == "get":
            continue
        assert op.value is not None
        if op.kind == "append":
            # An append of "" makes an absent key present: droppable only if no get could see it.
            if (op.value == "" and not reads_absent_or_empty) or op.value not in joined:
                dropped.add(index)
        elif op.value != "" and "\0" + op.value not in joined:
            dropped.add(index)
    return dropped
