"""`rebalance` against dumb references.

Checks: every shard lands on a live group, counts differ by at most one, and the number of
shards that change owner equals the minimum found by (a) exhaustive search over every
balanced assignment on small cases and (b) an exhaustive choice of which groups get the
larger target on the real shard count; plus determinism and the course's corner cases.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diskv_trio.shardmaster import SHARD_COUNT, moved_count, rebalance


def is_balanced(shards: Sequence[int], gids: Sequence[int]) -> bool:
    counts = Counter(shards)
    per_group = [counts.get(gid, 0) for gid in gids]
    return max(per_group) - min(per_group) <= 1


def brute_force_min_moves(shards: Sequence[int], gids: Sequence[int]) -> int:
    """Least moves over every assignment of the shards to `gids` that is balanced."""
    best = len(shards)
    for candidate in itertools.product(gids, repeat=len(shards)):
        if is_balanced(candidate, gids):
            best = min(best, moved_count(shards, candidate))
    return best


def target_choice_min_moves(shards: Sequence[int], gids: Sequence[int]) -> int:
    """Least moves by trying every set of groups that could get the larger target."""
    base, extra = divmod(len(shards), len(gids))
    counts = Counter(shards)
    best_kept = 0
    for larger in itertools.combinations(gids, extra):
        kept = sum(min(counts.get(g, 0), base + (1 if g in larger else 0)) for g in gids)
        best_kept = max(best_kept, kept)
    return len(shards) - best_kept


def check_result(shards: Sequence[int], gids: Sequence[int], result: Sequence[int]) -> None:
    assert len(result) == len(shards)
    assert all(gid in gids for gid in result)
    assert is_balanced(result, gids)


small_cases = st.integers(min_value=1, max_value=4).flatmap(
    lambda group_count: st.tuples(
        st.lists(st.integers(0, 6), min_size=1, max_size=6),
        st.sets(st.integers(1, 6), min_size=1, max_size=group_count),
    )
)


@settings(max_examples=150, deadline=None)
@given(small_cases)
def test_rebalance_matches_brute_force_on_small_cases(case: tuple[list[int], set[int]]) -> None:
    shards, gid_set = case
    gids = sorted(gid_set)
    result = rebalance(shards, gids)
    check_result(shards, gids, result)
    assert moved_count(shards, result) == brute_force_min_moves(shards, gids)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 25), min_size=SHARD_COUNT, max_size=SHARD_COUNT),
    st.sets(st.integers(1, 25), min_size=1, max_size=14),
)
def test_rebalance_moves_the_minimum_on_ten_shards(shards: list[int], gid_set: set[int]) -> None:
    gids = sorted(gid_set)
    result = rebalance(shards, gids)
    check_result(shards, gids, result)
    assert moved_count(shards, result) == target_choice_min_moves(shards, gids)
    # Rebalancing an already balanced assignment changes nothing.
    assert rebalance(result, gids) == result


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=SHARD_COUNT, max_size=SHARD_COUNT),
    st.lists(st.integers(1, 12), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_rebalance_ignores_order_and_duplicates_of_gids(
    shards: list[int], gids: list[int], rng: random.Random
) -> None:
    shuffled = list(gids) + list(gids)
    rng.shuffle(shuffled)
    assert rebalance(shards, shuffled) == rebalance(shards, sorted(set(gids)))
    assert rebalance(shards, set(gids)) == rebalance(tuple(shards), frozenset(gids))


def test_rebalance_without_groups_unassigns_everything() -> None:
    assert rebalance([3, 3, 4, 0, 5, 5, 5, 5, 5, 5], []) == (0,) * SHARD_COUNT


@pytest.mark.parametrize("gids", [[0], [3, 0], [-2, 5]])
def test_rebalance_refuses_non_positive_gids(gids: list[int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        rebalance([0] * SHARD_COUNT, gids)


def test_rebalance_first_group_takes_every_shard() -> None:
    assert rebalance([0] * SHARD_COUNT, [7]) == (7,) * SHARD_COUNT


def test_rebalance_more_groups_than_shards_moves_nothing_held() -> None:
    shards = list(range(1, SHARD_COUNT + 1))  # gids 1..10, one shard each
    gids = list(range(1, 16))
    assert rebalance(shards, gids) == tuple(shards)
    # Leaving groups that hold nothing moves nothing either.
    assert rebalance(shards, gids[:10]) == tuple(shards)


def test_rebalance_shards_of_a_departed_group_go_to_the_smallest() -> None:
    shards = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    result = rebalance(shards, [2, 3])
    assert moved_count(shards, result) == 4
    assert Counter(result) == Counter({2: 5, 3: 5})
    assert result[4:] == tuple(shards[4:])


def test_rebalance_reassigns_shards_on_unknown_and_zero_gids() -> None:
    shards = [0, 9, 1, 1, 1, 1, 1, 2, 2, 2]
    result = rebalance(shards, [1, 2])
    check_result(shards, [1, 2], result)
    assert result[0] in (1, 2) and result[1] in (1, 2)
    assert moved_count(shards, result) == 2
