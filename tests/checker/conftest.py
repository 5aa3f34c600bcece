"""Shared helpers for the linearizability checker tests: a random history generator.

The generator draws operations with overlapping intervals, gives each operation a hidden
linearization point inside its interval, runs the sequential model in that order to fill in
the gets' outputs: the history is linearizable by construction.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from diskv_trio.testing import Operation
from diskv_trio.testing._lin_model import step

HistoryFactory = Callable[..., list[Operation]]


def generate_history(
    seed: int,
    *,
    ops_count: int,
    keys_count: int,
    clients_count: int,
    gap_mean_s: float = 1.0,
    duration_mean_s: float = 3.0,
    get_fraction: float = 0.45,
    put_fraction: float = 0.1,
    unknown_fraction: float = 0.0,
) -> list[Operation]:
    """A random linearizable history; appended and put values are unique.

    Each client runs one operation at a time: it waits an exponential gap after its previous
    return, then its call lasts an exponential duration. An unknown-outcome operation takes
    effect (at a point of its interval) or not with even odds, and is recorded without return.
    """
    rng = random.Random(seed)
    free_at = [rng.random() for _ in range(clients_count)]
    plan: list[tuple[int, str, str, str | None, float, float, float | None, bool]] = []
    for index in range(ops_count):
        client = min(range(clients_count), key=free_at.__getitem__)
        call = free_at[client] + rng.expovariate(1 / gap_mean_s)
        duration = rng.expovariate(1 / duration_mean_s)
        free_at[client] = call + duration
        draw = rng.random()
        kind = "get" if draw < get_fraction else "put" if draw < get_fraction + put_fraction else "append"
        key = f"key{rng.randrange(keys_count)}"
        value = None if kind == "get" else f"{kind[0]}{client}.{index};"
        unknown = rng.random() < unknown_fraction
        takes_effect = not unknown or rng.random() < 0.5
        point = call + rng.random() * duration if takes_effect else None
        plan.append((client, kind, key, value, call, call + duration, point, unknown))

    values: dict[str, str] = {}
    outputs: dict[int, str | None] = {}
    applied = sorted((i for i, step in enumerate(plan) if step[6] is not None),
                     key=lambda i: plan[i][6])  # type: ignore[arg-type, return-value]
    for index in applied:
        _, kind, key, value, *_ = plan[index]
        if kind == "get":
            outputs[index] = values.get(key)  # None: absent
        elif kind == "put":
            assert value is not None
            values[key] = value
        else:
            assert value is not None
            values[key] = values.get(key, "") + value

    ops = []
    for index, (client, kind, key, value, call, ret, _, unknown) in enumerate(plan):
        output = outputs.get(index) if kind == "get" and not unknown else None
        ops.append(Operation(client, kind, key, value, output, call,  # type: ignore[arg-type]
                             None if unknown else ret))
    return ops


@pytest.fixture
def make_history() -> HistoryFactory:
    """The random linearizable history generator (see `generate_history`)."""
    return generate_history


def check_linearization(ops: list[Operation], order: list[Operation]) -> None:
    """Assert that `order` is a linearization of `ops` on one key: every known-outcome op
    appears once (unknown ones at most once), each get reads the value so far, and no op comes
    after one that was called after it returned."""
    assert len({id(op) for op in order}) == len(order)
    placed = {id(op) for op in order}
    assert all(id(op) in placed for op in ops if not op.unknown)
    value: str | None = None
    latest_call = float("-inf")
    for op in order:
        legal, value_after = step(value, op)
        assert legal, (op, value)
        value = value_after
        # An op placed after one called later than its own return breaks real-time order.
        if not op.unknown:
            assert op.ret is not None
            assert latest_call <= op.ret, op
        latest_call = max(latest_call, op.call)


@pytest.fixture
def assert_linearization() -> Callable[[list[Operation], list[Operation]], None]:
    """The linearization validator (see `check_linearization`)."""
    return check_linearization
