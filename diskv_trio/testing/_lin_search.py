"""Linearizability search for the history of one key (Wing & Gong, with Lowe's memoisation).

The search is Porcupine's ``checkSingle``:

- Every operation gives a call entry and a return entry; entries are sorted by time, a call
  before a return at equal times (intervals are closed). An operation of unknown outcome
  returns at +infinity: it may take effect anywhere after its call, or never.
- The entries form a doubly linked list. Depth-first, the search tries to linearize a call
  entry met before the first return entry: it applies the operation to the state; if the
  operation is legal there and the configuration (set of linearized operations, state) is
  new, it lifts the call and its return out of the list and starts again from the head.
  Reaching a return entry means the operation it closes must already have been linearized:
  a dead end, so the search pops the last choice, unlifts it and tries the next call entry.
  The search succeeds when every operation of known outcome is linearized (the unknown ones
  left over never took effect).
- A configuration goes in a set when first reached, so none is explored twice (Lowe). The
  linearized set is an int bitset stored relative to its frontier (the lowest operation not
  linearized; all below it are), which keeps the keys small for long histories.

Reductions on top of Porcupine, each keeping every linearization that matters:

1. *Reads first.* A get that may run now and whose output equals the state is linearized at
   once, without trying the other candidates: a get changes nothing, so if a completion
   exists, the one with this get moved to the front is valid too.
2. *Unread values.* A value that is no prefix of any get's output can never be read: appends
   only extend it, so a put must come before the next get. All such values behave alike and
   share one state, `_UNREAD`; and a configuration whose next get (the first get return
   entry, with no put called before it) cannot extend the state to its output is a dead end.
3. *Lazy invisible writes.* While the state is unread, an append (or a put of an unread value)
   changes nothing visible, so the search does not branch on applying one. Instead it
   remembers how far the list reached while the state was unread (`ghost_limit`): a pending
   write whose call lies before it could have been applied, invisibly, back then. When such
   a write's return entry blocks the search, it is linearized as that invisible write (a
   "ghost") instead of a dead end. This turns the 2^k choices of which pending appends vanish
   under the next put into choices made only when forced. The cache keeps, per configuration,
   the highest ghost limit it was explored with; a visit with a lower one is skipped (it
   allows a subset of the moves).

States are strings interned to small ints, so the cache key hashes an int, not the string,
and an append's new state is computed once per (state, operation).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ._lin_history import Operation

_GET: Final = 0
_PUT: Final = 1
_APPEND: Final = 2
_KIND_CODES: Final = {"get": _GET, "put": _PUT, "append": _APPEND}
_UNREAD: Final = -1
_NO_KEY: Final[tuple[int, int, int]] = (-1, -1, -1)

_NORMAL: Final = 0
"""Frame kind: a choice among the candidates; after it fails the next candidate is tried."""
_READ: Final = 1
"""Frame kind: a get taken at once (reduction 1); when it fails the whole level fails."""
_GHOST: Final = 2
"""Frame kind: an invisible write (reduction 3), the last option of its level."""

DEADLINE_CHECK_STEPS: Final = 512
"""Search steps between two reads of the clock: often enough to stop within about a
millisecond of the deadline, rare enough that reading the clock costs nothing measurable."""

CONFIGURATIONS_MAX: Final = 2_000_000
"""Configurations one key's search may visit before it gives up (verdict unknown), whatever its
time budget: each costs about 150 bytes of cache, so this caps a search near 300 MB on a
shared machine. Realistic histories of thousands of ops need tens of thousands."""

WALK_ENTRIES_MAX: Final = 256
"""How far past the first return the search looks for a get to test the state against. The
test only prunes, so stopping early is safe; the bound keeps a level's cost small when gets
are rare."""


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """What the search of one key found.

    Attributes:
        linearizable: True if a linearization exists, False if none does, None if the time
            budget or `CONFIGURATIONS_MAX` ran out first.
        longest: indices (into the searched list) of the longest linearizable prefix found,
            in linearization order; for True, a whole linearization (unknown-outcome ops
            left out of it never took effect).
        state_after_longest: the value of the key after `longest`.
        configurations: configurations visited, a measure of the work done.
    """

    linearizable: bool | None
    longest: tuple[int, ...]
    state_after_longest: str | None
    configurations: int


def search_key(
    ops: Sequence[Operation],
    *,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """Search for a linearization of `ops` (get, put and append only), all on one key,
    starting from an absent key.

    Unknown-outcome gets must have been removed by the caller (they constrain nothing).

    Args:
        ops: the key's operations, in any order.
        deadline: `clock()` value after which the search gives up (returns None).
        clock: the clock `deadline` is on.
    """
    n = len(ops)
    known_left = sum(1 for op in ops if not op.unknown)
    if known_left == 0:
        return SearchOutcome(True, (), None, 0)

    # Entries sorted by time, calls first at equal times; ids follow the calls' order so that
    # the first entry left in the list is always the call of the lowest unlinearized id.
    raw: list[tuple[float, int, int]] = []
    for index, op in enumerate(ops):
        assert not (op.kind == "get" and op.unknown), "unknown gets must be dropped first"
        ret = math.inf if op.unknown or op.ret is None else op.ret
        raw.append((op.call, 0, index))
        raw.append((ret, 1, index))
    raw.sort()
    id_of_index: dict[int, int] = {}
    for _, is_return, index in raw:
        if not is_return:
            id_of_index[index] = len(id_of_index)
    index_of_id = [0] * n
    for index, op_id in id_of_index.items():
        index_of_id[op_id] = index

    # States: strings interned to ids; unread values (reduction 2) all map to _UNREAD.
    outputs = sorted({op.output for op in ops if op.kind == "get" and isinstance(op.output, str)})
    strings: list[str] = []
    string_ids: dict[str, int] = {}

    def intern(text: str) -> int:
        found = string_ids.get(text)
        if found is None:
            position = bisect.bisect_left(outputs, text)
            if position == len(outputs) or not outputs[position].startswith(text):
                return _UNREAD
            found = len(strings)
            strings.append(text)
            string_ids[text] = found
        return found

    # An absent key is its own state: it reads as None, and appends to it as to "".
    strings.append("")
    initial = len(strings) - 1
    kind_of = [0] * n
    arg_of = [0] * n  # get: expected state id; put: new state id; append: unused
    append_value: list[str] = [""] * n
    unknown_of = [False] * n
    invisible_of = [False] * n  # writes that leave an unread state unread
    for op_id in range(n):
        op = ops[index_of_id[op_id]]
        code = _KIND_CODES[op.kind]
        kind_of[op_id] = code
        unknown_of[op_id] = op.unknown
        if code == _GET:
            assert op.output is None or isinstance(op.output, str)
            arg_of[op_id] = initial if op.output is None else intern(op.output)
            assert arg_of[op_id] != _UNREAD
        elif code == _PUT:
            assert op.value is not None
            arg_of[op_id] = intern(op.value)
            invisible_of[op_id] = arg_of[op_id] == _UNREAD
        else:
            assert op.value is not None
            append_value[op_id] = op.value
            invisible_of[op_id] = True

    # Linked list over nodes: 0 is the head, 1..2n the sorted entries, 2n+1 the tail.
    tail = 2 * n + 1
    nxt = list(range(1, tail + 1)) + [-1]
    prv = [-1] + list(range(tail))
    op_of = [n] * (tail + 1)  # the tail's "op" is n: the frontier when all are linearized
    match = [-1] * (tail + 1)  # call node -> its return node; -1 for returns, head and tail
    call_node = [0] * n
    for position, (_, is_return, index) in enumerate(raw, start=1):
        op_id = id_of_index[index]
        op_of[position] = op_id
        if is_return:
            match[call_node[op_id]] = position
        else:
            call_node[op_id] = position

    bits = [1 << op_id for op_id in range(n)]
    transitions: dict[int, int] = {}
    # Configuration (frontier, bitset above it, state) -> highest ghost limit it was explored
    # with: a lower limit allows a subset of the moves, so it needs no second visit.
    cache: dict[tuple[int, int, int], int] = {}
    visited = 0
    frames_node: list[int] = []
    frames_state: list[int] = []
    frames_ghost_limit: list[int] = []
    frames_kind: list[int] = []
    longest_frames: list[int] = []
    longest_kinds: list[int] = []
    longest_states: list[int] = []

    linearized = 0
    state = initial
    ghost_limit = 0  # list nodes before it were callable while the state was unread
    node = 0
    new_level = True
    countdown = DEADLINE_CHECK_STEPS
    outcome: bool | None = None

    while True:
        countdown -= 1
        if countdown == 0:
            countdown = DEADLINE_CHECK_STEPS
            if clock() > deadline or visited > CONFIGURATIONS_MAX:
                outcome = None
                break

        # Pick the next move: `chosen` is a call node to linearize (0: none, a dead end), and
        # `key` the configuration it leads to, not yet in the cache.
        chosen = 0
        chosen_kind = _NORMAL
        new_state = state
        key = _NO_KEY
        key_ghost_limit = 0
        scan = not new_level  # after a backtrack: go on scanning the level from `node`
        if new_level:
            new_level = False
            if known_left == 0:
                outcome = True
                break
            first = nxt[0]
            # Walk the calls before the first return (those that may come next), looking for
            # a get that reads this state (reduction 1); then on to the first get's return,
            # which this state must still be able to reach (reduction 2).
            entry = first
            first_return = 0
            put_seen = False
            dead = False
            walked = 0
            while True:
                if match[entry] >= 0:
                    op_id = op_of[entry]
                    code = kind_of[op_id]
                    if code == _GET:
                        if first_return == 0 and chosen == 0 and arg_of[op_id] == state:
                            chosen = entry
                    elif code == _PUT:
                        put_seen = True
                        if first_return:
                            break
                else:
                    if first_return == 0:
                        first_return = entry
                    if entry == tail:
                        break
                    op_id = op_of[entry]
                    if kind_of[op_id] == _GET:
                        if not put_seen and (
                            state == _UNREAD
                            or not strings[arg_of[op_id]].startswith(strings[state])
                        ):
                            dead = True
                        break
                    if put_seen:
                        break
                walked += 1
                if walked > WALK_ENTRIES_MAX and first_return:
                    break
                entry = nxt[entry]
            if state == _UNREAD and first_return > ghost_limit:
                ghost_limit = first_return
            if dead:
                chosen = 0
            elif chosen:
                key, key_ghost_limit = _key(chosen, state, linearized | bits[op_of[chosen]],
                                            ghost_limit, op_of, nxt, match)
                if cache.get(key, -1) >= key_ghost_limit:
                    chosen = 0  # explored already, and this level has no other option
                else:
                    chosen_kind = _READ
            else:
                node = first
                scan = True
        if scan:
            # Scan the candidates from `node` on, up to the first return entry.
            while True:
                returned = match[node]
                if returned < 0:
                    # The first return: its op must be placed now. The last way out is a
                    # write that can vanish into an earlier unread state (reduction 3).
                    op_id = op_of[node]
                    if invisible_of[op_id] and call_node[op_id] < ghost_limit:
                        key, key_ghost_limit = _key(call_node[op_id], state,
                                                    linearized | bits[op_id], ghost_limit,
                                                    op_of, nxt, match)
                        if cache.get(key, -1) < key_ghost_limit:
                            chosen = call_node[op_id]
                            chosen_kind = _GHOST
                            new_state = state
                    break
                op_id = op_of[node]
                code = kind_of[op_id]
                if code == _GET or (state == _UNREAD and invisible_of[op_id]):
                    node = nxt[node]  # a get that does not read this state; a lazy write
                    continue
                if code == _PUT:
                    new_state = arg_of[op_id]
                elif state == _UNREAD:
                    new_state = _UNREAD
                else:
                    transition = state * n + op_id
                    found = transitions.get(transition)
                    if found is None:
                        found = intern(strings[state] + append_value[op_id])
                        transitions[transition] = found
                    new_state = found
                key, key_ghost_limit = _key(node, new_state, linearized | bits[op_id],
                                            ghost_limit, op_of, nxt, match)
                if cache.get(key, -1) >= key_ghost_limit:
                    node = nxt[node]
                    continue
                chosen = node
                break

        if chosen:
            op_id = op_of[chosen]
            cache[key] = key_ghost_limit
            visited += 1
            frames_node.append(chosen)
            frames_state.append(state)
            frames_ghost_limit.append(ghost_limit)
            frames_kind.append(chosen_kind)
            state = new_state
            linearized |= bits[op_id]
            if not unknown_of[op_id]:
                known_left -= 1
            _lift(chosen, match[chosen], nxt, prv)
            new_level = True
            continue

        # Dead end: pop choices until one whose level has candidates left.
        if len(frames_node) > len(longest_frames):
            longest_frames = list(frames_node)
            longest_kinds = list(frames_kind)
            longest_states = frames_state[1:] + [state]
        while frames_node:
            node = frames_node.pop()
            state = frames_state.pop()
            ghost_limit = frames_ghost_limit.pop()
            frame_kind = frames_kind.pop()
            op_id = op_of[node]
            linearized ^= bits[op_id]
            if not unknown_of[op_id]:
                known_left += 1
            _unlift(node, match[node], nxt, prv)
            if frame_kind == _NORMAL:
                break
        else:
            outcome = False
            break
        node = nxt[node]

    if outcome:
        longest_frames = frames_node
        longest_kinds = frames_kind
        longest_states = frames_state[1:] + [state]
    order = _placed_order(
        [op_of[frame] for frame in longest_frames], longest_kinds, longest_states
    )
    indices = tuple(index_of_id[op_id] for op_id in order)
    return SearchOutcome(outcome, indices, _replay(ops[index] for index in indices), visited)


def _key(
    call: int,
    new_state: int,
    new_linearized: int,
    ghost_limit: int,
    op_of: list[int],
    nxt: list[int],
    match: list[int],
) -> tuple[tuple[int, int, int], int]:
    """The cache key of the configuration reached by linearizing the op of `call`, and the
    ghost limit that goes with it.

    The bitset is stored above the new frontier (the first entry left once `call` and its
    return are lifted); the ghost limit counts only if it still reaches a pending call.
    """
    frontier = nxt[0]
    if frontier == call:
        frontier = nxt[frontier]
        if frontier == match[call]:
            frontier = nxt[frontier]
    shift = op_of[frontier]
    return (shift, new_linearized >> shift, new_state), (
        ghost_limit if ghost_limit > frontier else 0
    )


def _placed_order(op_ids: list[int], kinds: list[int], states_after: list[int]) -> list[int]:
    """The linearization order of a search path, with each ghost moved back to where it took
    effect: just after the latest op before it that left the state unread."""
    order: list[int] = []
    insert_at = 0
    for op_id, kind, state_after in zip(op_ids, kinds, states_after, strict=True):
        if kind == _GHOST:
            order.insert(insert_at, op_id)
            insert_at += 1
            continue
        order.append(op_id)
        if state_after == _UNREAD:
            insert_at = len(order)
    return order


def _replay(ops: Iterable[Operation]) -> str | None:
    """The key's value after applying `ops` in order to an absent key (None)."""
    value: str | None = None
    for op in ops:
        if op.kind == "put":
            assert op.value is not None
            value = op.value
        elif op.kind == "append":
            assert op.value is not None
            value = (value or "") + op.value
    return value


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Remove a call entry and its return entry from the list (they stay linked to it)."""
    before, after = prv[call], nxt[call]
    nxt[before] = after
    prv[after] = before
    before, after = prv[ret], nxt[ret]
    nxt[before] = after
    prv[after] = before


def _unlift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Put back what `_lift` removed, in reverse order."""
    nxt[prv[ret]] = ret
    prv[nxt[ret]] = ret
    nxt[prv[call]] = call
    prv[nxt[call]] = call
