"""The checker against a brute-force reference on many small random histories.

The model has absent keys, Delete (did the key exist?) and compare-and-set (did it write?).
The reference tries every order of the operations that respects real time, with every
subset of the unknown-outcome operations left out; it is exponential but obviously right.
Histories come from a hidden linearization (so about half are linearizable) with one read
sometimes replaced by another state of the key (so the rest are near misses). For every OK
verdict the linearization the search returns is validated on its own.
"""

from __future__ import annotations

import random

from diskv_trio.testing import Operation, Verdict, check_history
from diskv_trio.testing._lin_model import fast_path_applies, search_model
from diskv_trio.testing._lin_search import search_key

VALUES = ("a", "b", "c", "ab", "x", "")
FAST_KINDS = ["get", "get", "put", "append", "append", "append"]
ALL_KINDS = ["get", "get", "put", "append", "append", "delete", "cas", "cas"]


def _apply(state: str | None, op: Operation) -> tuple[bool, str | None]:
    """The model, written out again here so the reference shares no code with the checker."""
    if op.kind == "get":
        return op.output == state, state
    if op.kind == "put":
        return True, op.value
    if op.kind == "append":
        assert op.value is not None
        return True, (state or "") + op.value
    if op.kind == "delete":
        return op.unknown or op.output == (state is not None), None
    wrote = state == op.expected
    return op.unknown or op.output == wrote, op.value if wrote else state


def _reference(ops: list[Operation]) -> bool:
    ops = [op for op in ops if not (op.kind == "get" and op.unknown)]
    ret = [float("inf") if op.unknown else op.ret for op in ops]
    unknown = [index for index, op in enumerate(ops) if op.unknown]

    def extend(left: set[int], state: str | None) -> bool:
        if not left:
            return True
        for index in left:
            op = ops[index]
            if any(ret[other] < op.call for other in left if other != index):  # type: ignore[operator]
                continue
            legal, after = _apply(state, op)
            if legal and extend(left - {index}, after):
                return True
        return False

    for mask in range(1 << len(unknown)):
        skipped = {unknown[bit] for bit in range(len(unknown)) if mask >> bit & 1}
        if extend(set(range(len(ops))) - skipped, None):
            return True
    return False


def _assert_valid_linearization(ops: list[Operation], order: list[Operation]) -> None:
    assert all(op in order for op in ops if not op.unknown)
    assert len({id(op) for op in order}) == len(order)
    state: str | None = None
    for op in order:
        legal, state = _apply(state, op)
        assert legal, op
    position = {id(op): index for index, op in enumerate(order)}
    for first in order:
        for second in order:
            if not first.unknown and first.ret < second.call:  # type: ignore[operator]
                assert position[id(first)] < position[id(second)]


def _near_miss_history(rng: random.Random, count: int, kinds: list[str]) -> list[Operation]:
    """A history from a hidden linearization over all five kinds; often one result is then
    replaced by another (a near miss)."""
    plan = []
    for _ in range(count):
        call = rng.randrange(12)
        duration = rng.randrange(5)
        kind = rng.choice(kinds)
        unknown = rng.random() < 0.2
        point = call + rng.random() * duration if not unknown or rng.random() < 0.5 else None
        value = None if kind in ("get", "delete") else rng.choice(VALUES)
        expected = rng.choice([None, *VALUES]) if kind == "cas" else None
        plan.append((kind, value, expected, call, duration, point, unknown))
    state: str | None = None
    outputs: dict[int, object] = {}
    states: list[str | None] = [None]
    for index in sorted((i for i, step in enumerate(plan) if step[5] is not None),
                        key=lambda i: plan[i][5]):  # type: ignore[arg-type, return-value]
        kind, value, expected = plan[index][:3]
        probe = Operation(0, kind, "k", value, None, 0, None, "unknown", expected)  # type: ignore[arg-type]
        if kind == "get":
            outputs[index] = state
        elif kind == "delete":
            outputs[index] = state is not None
        elif kind == "cas":
            outputs[index] = state == expected
        state = _apply(state, probe)[1]
        states.append(state)
    ops = []
    for client, (kind, value, expected, call, duration, _, unknown) in enumerate(plan):
        output = None if unknown else outputs.get(client, None if kind in ("get", "put", "append") else False)
        ops.append(Operation(client, kind, "k", value, output,  # type: ignore[arg-type]
                             call, None if unknown else call + duration, expected=expected))
    known = [index for index, op in enumerate(ops) if not op.unknown and op.kind in ("get", "delete", "cas")]
    if known and rng.random() < 0.7:
        index = rng.choice(known)
        op = ops[index]
        if op.kind == "get":
            others = [s for s in [*states, "zz"] if s != op.output]
            wrong: object = rng.choice(others)
        else:
            wrong = not op.output
        ops[index] = Operation(op.client_id, op.kind, "k", op.value, wrong, op.call, op.ret,  # type: ignore[arg-type]
                               expected=op.expected)
    return ops


def test_agrees_with_brute_force_reference() -> None:
    rng = random.Random(20261125)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        kinds = FAST_KINDS if rng.random() < 0.5 else ALL_KINDS
        ops = _near_miss_history(rng, rng.randrange(1, 10), kinds)
        expected = _reference(ops)
        verdicts[expected] += 1
        result = check_history(ops, timeout_s=10)
        assert result.verdict is (Verdict.OK if expected else Verdict.ILLEGAL), ops
        # The raw searches (no dropping of unobservable unknown ops) must agree too, and their
        # linearizations must hold up on their own: the general one always, the fast one
        # where it applies.
        searched = [op for op in ops if not (op.kind == "get" and op.unknown)]
        searches = [search_model] + ([search_key] if fast_path_applies(searched) else [])
        for search in searches:
            outcome = search(searched)
            assert outcome.linearizable is expected, (search, ops)
            if expected:
                _assert_valid_linearization(searched, [searched[i] for i in outcome.longest])
    # Both verdicts are well represented, or the comparison would prove little.
    assert min(verdicts.values()) > 400
