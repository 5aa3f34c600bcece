"""Properties of the shardmaster over random Join / Leave / Move histories (hypothesis).

After every op: a Join or Leave that changes the groups leaves counts within one and moves
exactly the minimum number of shards, computed independently by trying every choice of
groups for the larger target; a Move changes exactly that one shard; an op that changes
nothing makes no config; config numbers go up by one per change.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from diskv_trio.shardmaster import SHARD_COUNT, Config, ShardmasterState, moved_count


def reference_min_moves(shards: tuple[int, ...], gids: list[int]) -> int:
    if not gids:
        return sum(1 for gid in shards if gid != 0)
    base, extra = divmod(len(shards), len(gids))
    counts = Counter(shards)
    kept = max(
        sum(min(counts.get(g, 0), base + (g in larger)) for g in gids)
        for larger in itertools.combinations(gids, extra)
    )
    return len(shards) - kept


ops = st.lists(
    st.one_of(
        st.builds(
            lambda gid: {"op": "join", "gid": gid, "servers": [f"g{gid}a", f"g{gid}b"]},
            st.integers(1, 12),
        ),
        st.builds(lambda gid: {"op": "leave", "gid": gid}, st.integers(1, 12)),
        st.builds(
            lambda shard, gid: {"op": "move", "shard": shard, "gid": gid},
            st.integers(0, SHARD_COUNT - 1),
            st.integers(1, 12),
        ),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_every_op_keeps_balance_minimal_moves_and_numbering(history: list[dict[str, Any]]) -> None:
    state = ShardmasterState()
    for op in history:
        before = state.latest
        reply = state.apply(op)
        after = state.latest
        if reply["err"] != "OK":
            assert op["op"] == "move" and op["gid"] not in before.groups
            assert after is before
            continue
        assert reply["num"] == after.num
        if not reply["changed"]:
            assert after is before
            continue
        assert after.num == before.num + 1
        assert state.query(before.num) == before
        if op["op"] == "move":
            assert after.shards[op["shard"]] == op["gid"]
            assert moved_count(before.shards, after.shards) == 1
            assert dict(after.groups) == dict(before.groups)
            continue
        gids = sorted(after.groups)
        counts = Counter(after.shards)
        if gids:
            per_group = [counts.get(gid, 0) for gid in gids]
            assert max(per_group) - min(per_group) <= 1
            assert set(after.shards) <= set(gids)
        else:
            assert after.shards == (0,) * SHARD_COUNT
        assert moved_count(before.shards, after.shards) == reference_min_moves(before.shards, gids)


@settings(max_examples=100, deadline=None)
@given(ops, st.data())
def test_replicas_applying_the_same_log_agree_and_restore_resumes(
    history: list[dict[str, Any]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(history)))
    first, second = ShardmasterState(), ShardmasterState()
    replies_first = [first.apply(op) for op in history]
    replies_second = [second.apply(op) for op in history[:cut]]
    second = ShardmasterState.restore(second.snapshot())
    replies_second += [second.apply(op) for op in history[cut:]]
    assert replies_first == replies_second
    assert first.snapshot() == second.snapshot()
    assert Config.from_wire(first.apply({"op": "query", "num": -1})["config"]) == first.latest
