"""The key/value model a history is checked against, and a general search for it.

Rules kept here:
- A key's state is its value (text) or None when absent; every key starts absent.
- get: legal iff its output equals the state (None for absent). put: the state becomes its
  value. append: the state becomes (state or "") + value. delete: the state becomes None;
  legal iff its output (True: existed) matches, or is unknown. cas: writes its value iff
  the state equals `expected` (None: absent); legal iff its output (True: wrote) matches,
  or is unknown.
- `search_model` is Wing & Gong with Lowe's memo on (linearized set, state), for any history
  of this model. Histories of get/put/append only go to the faster `_lin_search.search_key`
  (`fast_path_applies`), which keeps the same model with its own reductions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from ._lin_history import Operation
from ._lin_search import CONFIGURATIONS_MAX, DEADLINE_CHECK_STEPS, SearchOutcome

State = str | None


def step(state: State, op: Operation) -> tuple[bool, State]:
    """(legal, state after) for `op` applied to `state`."""
    kind = op.kind
    if kind == "get":
        return op.output == state, state
    if kind == "put":
        assert op.value is not None
        return True, op.value
    if kind == "append":
        assert op.value is not None
        return True, (state or "") + op.value
    if kind == "delete":
        return op.unknown or op.output == (state is not None), None
    assert kind == "cas" and op.value is not None
    wrote = state == op.expected
    return op.unknown or op.output == wrote, op.value if wrote else state


def replay(ops: Iterable[Operation]) -> State:
    """The key's state after applying `ops` in order to an absent key (legal or not)."""
    state: State = None
    for op in ops:
        state = step(state, op)[1]
    return state


def fast_path_applies(ops: Sequence[Operation]) -> bool:
    """True if `_lin_search.search_key` decides `ops` exactly (see the module docstring)."""
    return all(op.kind in ("get", "put", "append") for op in ops)


_NOT_FOUND: Final = -1


def search_model(
    ops: Sequence[Operation],
    *,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """Search for a linearization of `ops` (one key, any kinds), from an absent key.

    Unknown-outcome gets must have been removed by the caller.
    """
    n = len(ops)
    order = sorted(range(n), key=lambda i: ops[i].call)
    calls = [ops[i].call for i in order]
    rets: list[float] = [math.inf if ops[i].unknown or ops[i].ret is None else float(ops[i].ret or 0) for i in order]
    known = [not ops[i].unknown for i in order]
    by_ret = sorted((j for j in range(n) if known[j]), key=lambda j: rets[j])
    known_total = len(by_ret)
    states: dict[State, int] = {}

    def state_id(state: State) -> int:
        return states.setdefault(state, len(states))

    def candidates(linearized: int) -> list[int]:
        bound = math.inf
        for j in by_ret:
            if not linearized >> j & 1:
                bound = rets[j]
                break
        result = []
        for j in range(n):
            if calls[j] > bound:
                break
            if not linearized >> j & 1:
                result.append(j)
        return result

    seen: set[tuple[int, int]] = set()
    # Each frame: (linearized, state, known done, candidates, next candidate index).
    stack: list[tuple[int, State, int, list[int], int]] = [(0, None, 0, candidates(0), 0)]
    path: list[int] = []
    longest: list[int] = []
    visited = 0
    countdown = DEADLINE_CHECK_STEPS
    outcome: bool | None = False
    while stack:
        countdown -= 1
        if countdown == 0:
            countdown = DEADLINE_CHECK_STEPS
            if clock() > deadline or visited > CONFIGURATIONS_MAX:
                outcome = None
                break
        linearized, state, done, options, index = stack[-1]
        if done == known_total:
            outcome = True
            longest = list(path)
            break
        if index >= len(options):
            stack.pop()
            if len(path) > len(longest):
                longest = list(path)
            if path:
                path.pop()
            continue
        stack[-1] = (linearized, state, done, options, index + 1)
        j = options[index]
        legal, after = step(state, ops[order[j]])
        if not legal:
            continue
        now = linearized | 1 << j
        key = (now, state_id(after))
        if key in seen:
            continue
        seen.add(key)
        visited += 1
        path.append(j)
        stack.append((now, after, done + known[j], candidates(now), 0))
    indices = tuple(order[j] for j in longest)
    return SearchOutcome(outcome, indices, replay(ops[i] for i in indices), visited)
