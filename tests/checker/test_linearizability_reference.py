"""The checker against a brute-force reference on many small random histories.

The reference tries every order of the operations that respects real time, with every
subset of the unknown-outcome operations left out; it is exponential but obviously right.
Histories come from a hidden linearization (so about half are linearizable) with one read
sometimes replaced by another state of the key (so the rest are near misses). For every OK
verdict the linearization the search returns is validated on its own.
"""

from __future__ import annotations

import random

from diskv_trio.testing import Operation, Verdict, check_history
from diskv_trio.testing._lin_search import search_key

VALUES = ("a", "b", "c", "ab", "x")


def _reference(ops: list[Operation]) -> bool:
    ops = [op for op in ops if not (op.kind == "get" and op.unknown)]
    ret = [float("inf") if op.unknown else op.ret for op in ops]
    unknown = [index for index, op in enumerate(ops) if op.unknown]

    def extend(left: set[int], state: str) -> bool:
        if not left:
            return True
        for index in left:
            op = ops[index]
            if any(ret[other] < op.call for other in left if other != index):  # type: ignore[operator]
                continue
            if op.kind == "get":
                if op.output != state:
                    continue
                after = state
            else:
                assert op.value is not None
                after = op.value if op.kind == "put" else state + op.value
            if extend(left - {index}, after):
                return True
        return False

    for mask in range(1 << len(unknown)):
        skipped = {unknown[bit] for bit in range(len(unknown)) if mask >> bit & 1}
        if extend(set(range(len(ops))) - skipped, ""):
            return True
    return False


def _assert_valid_linearization(ops: list[Operation], order: list[Operation]) -> None:
    assert all(op in order for op in ops if not op.unknown)
    assert len({id(op) for op in order}) == len(order)
    state = ""
    for op in order:
        if op.kind == "get":
            assert op.output == state
        elif op.kind == "put":
            assert op.value is not None
            state = op.value
        else:
            assert op.value is not None
            state += op.value
    position = {id(op): index for index, op in enumerate(order)}
    for first in order:
        for second in order:
            if not first.unknown and first.ret < second.call:  # type: ignore[operator]
                assert position[id(first)] < position[id(second)]


def _near_miss_history(rng: random.Random, count: int) -> list[Operation]:
    plan = []
    for _ in range(count):
        call = rng.randrange(12)
        duration = rng.randrange(5)
        kind = rng.choice(["get", "get", "put", "append", "append", "append"])
        unknown = rng.random() < 0.2
        point = call + rng.random() * duration if not unknown or rng.random() < 0.5 else None
        plan.append((kind, None if kind == "get" else rng.choice(VALUES), call, duration,
                     point, unknown))
    state, outputs, states = "", {}, [""]
    for index in sorted((i for i, step in enumerate(plan) if step[4] is not None),
                        key=lambda i: plan[i][4]):  # type: ignore[arg-type, return-value]
        kind, value = plan[index][:2]
        if kind == "get":
            outputs[index] = state
        else:
            assert value is not None
            state = value if kind == "put" else state + value
            states.append(state)
    ops = [
        Operation(client, kind, "k", value,  # type: ignore[arg-type]
                  outputs.get(client, "") if kind == "get" and not unknown else None,
                  call, None if unknown else call + duration)
        for client, (kind, value, call, duration, _, unknown) in enumerate(plan)
    ]
    reads = [index for index, op in enumerate(ops) if op.kind == "get" and not op.unknown]
    if reads and rng.random() < 0.7:
        index = rng.choice(reads)
        op = ops[index]
        others = [state for state in states + ["zz"] if state != op.output]
        ops[index] = Operation(op.client_id, "get", "k", None, rng.choice(others), op.call, op.ret)
    return ops


def test_agrees_with_brute_force_reference() -> None:
    rng = random.Random(20261125)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        ops = _near_miss_history(rng, rng.randrange(1, 10))
        expected = _reference(ops)
        verdicts[expected] += 1
        result = check_history(ops, timeout_s=10)
        assert result.verdict is (Verdict.OK if expected else Verdict.ILLEGAL), ops
        # The raw search (no dropping of unobservable unknown ops) must agree too, and its
        # linearization must hold up on its own.
        searched = [op for op in ops if not (op.kind == "get" and op.unknown)]
        outcome = search_key(searched)
        assert outcome.linearizable is expected, ops
        if expected:
            _assert_valid_linearization(searched, [searched[i] for i in outcome.longest])
    # Both verdicts are well represented, or the comparison would prove little.
    assert min(verdicts.values()) > 400
