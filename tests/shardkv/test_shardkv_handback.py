"""Handing back a shard whose next owner never took it over (a group nobody runs).

Drives the cores of three groups through the wedge of issue 13: group 1 holds shard 5, a
forced join gives it to group 3 (never started), group 3 leaves and the shard goes to group
2. Checks that group 2 can reclaim group 1's hand-off only while nobody was granted it, that
the data and duplicate table arrive whole, that a late group 3 forfeits instead of waiting
for ever and never serves the shard, and that grants and forfeits survive a snapshot.
"""

from __future__ import annotations

from typing import Any

from shardkv_core_helpers import get, key_in, make_config, put, reconfig, servers_of

from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.shardkv import ShardDrop, ShardKVState
from diskv_trio.shardkv._handback import Source, reclaim_sources
from diskv_trio.shardmaster import Config

OK = {"err": "OK"}
SHARD = 5
C0 = Config.initial(COURSE_SHARDING)
C1 = make_config(1, [1] * 6 + [2] * 4)          # group 1 holds shards 0-5
C2 = make_config(2, [1] * 5 + [3] + [2] * 4)    # forced join: shard 5 to group 3
C3 = make_config(3, [1] * 5 + [2] * 5)          # group 3 leaves: shard 5 to group 2


def grant(state: ShardKVState, config_num: int, gid: int, to_config: int) -> dict[str, Any]:
    return state.apply({"op": "grant", "config_num": config_num, "shard": SHARD, "gid": gid, "to_config": to_config})


def install_from(target: ShardKVState, holder: ShardKVState, source: Source) -> dict[str, Any]:
    handoff = holder.handoff(source.config_num, SHARD)
    assert handoff is not None
    data, dedup = handoff
    wire_dedup = {client: [applied.seq, applied.result] for client, applied in dedup.items()}
    return target.apply({
        "op": "install", "config_num": target.config.num, "shard": SHARD, "data": data,
        "dedup": wire_dedup, "source": [source.config_num, source.gid, list(source.servers)],
    })


def groups_at_config_3() -> tuple[ShardKVState, ShardKVState]:
    one, two = ShardKVState(1), ShardKVState(2)
    for state in (one, two):
        assert reconfig(state, C1) == OK
    assert put(one, key_in(SHARD), "kept", "client-a", 1) == OK
    for config in (C2, C3):
        assert reconfig(one, config) == OK
    assert reconfig(two, C2) == OK
    assert reconfig(two, C3) == OK
    assert two.waiting == {SHARD}
    return one, two


def test_the_walk_back_finds_the_last_holder_and_stops_at_owner_zero() -> None:
    assert reclaim_sources(SHARD, [C2, C1, C0]) == [Source(1, 1, servers_of(1))]
    assert reclaim_sources(SHARD, [C2]) == []
    # A ghost that owned the shard over two configs is skipped whole.
    c3_ghost = make_config(3, [1] * 5 + [3] + [2] * 4)
    assert reclaim_sources(SHARD, [c3_ghost, C2, C1, C0]) == [Source(1, 1, servers_of(1))]


def test_a_shard_the_next_owner_never_took_comes_back_whole_with_its_duplicate_table() -> None:
    one, two = groups_at_config_3()
    source = Source(1, 1, servers_of(1))
    assert grant(one, 1, 2, 3) == OK
    assert grant(one, 1, 2, 3) == OK  # a retry is answered again
    assert install_from(two, one, source) == OK
    assert get(two, key_in(SHARD)) == {"err": "OK", "value": "kept"}
    assert put(two, key_in(SHARD), "again", "client-a", 1) == OK  # the retry is not re-applied
    assert get(two, key_in(SHARD)) == {"err": "OK", "value": "kept"}
    assert two.pending_drops() == [ShardDrop(SHARD, 1, 1, servers_of(1))]


def test_a_late_ghost_is_refused_forfeits_and_never_serves_the_shard() -> None:
    one, _ = groups_at_config_3()
    assert grant(one, 1, 2, 3) == OK
    ghost = ShardKVState(3)
    assert reconfig(ghost, C1) == OK  # group 3 did not exist yet: owns nothing
    assert reconfig(ghost, C2) == OK
    assert ghost.waiting == {SHARD}
    refusal = grant(one, 1, 3, 2)
    assert refusal == {"err": "ErrStale", "granted_to": [2, 3]}
    forfeit = {"op": "forfeit", "config_num": 2, "shard": SHARD}
    assert ghost.apply({**forfeit, "granted_to": [2, 2]})["err"] == "ErrBadOp"  # skips nothing
    assert ghost.apply({**forfeit, "granted_to": refusal["granted_to"]}) == OK
    assert ghost.waiting == frozenset()
    assert put(ghost, key_in(SHARD), "lost", "client-b", 1) == {"err": "ErrWrongGroup"}
    restored = ShardKVState.restore(ghost.snapshot())
    assert restored.describe() == ghost.describe()
    assert reconfig(ghost, C3) == OK  # moves on, handing nothing on
    assert ghost.handoff_keys() == []


def test_a_hand_off_granted_to_its_next_owner_cannot_be_reclaimed() -> None:
    one, two = groups_at_config_3()
    assert grant(one, 1, 3, 2) == OK  # group 3 took it over (it may have served writes)
    assert grant(one, 1, 2, 3) == {"err": "ErrStale", "granted_to": [3, 2]}
    restored = ShardKVState.restore(one.snapshot())
    assert grant(restored, 1, 2, 3) == {"err": "ErrStale", "granted_to": [3, 2]}
    assert two.waiting == {SHARD}  # group 2 keeps waiting for group 3
    assert one.apply({"op": "drop", "config_num": 1, "shard": SHARD}) == OK
    assert grant(one, 1, 2, 3) == {"err": "ErrNotReady"}  # dropped: nothing to give


def test_a_grant_outlives_its_dropped_hand_off_so_a_skipped_group_forfeits() -> None:
    """Group 2 reclaims shard 5 and the holder drops the hand-off; group 3, back late, must
    still learn whom it went to (before, the grant went with the hand-off and group 3 was
    told "not ready" for ever)."""
    one, two = groups_at_config_3()
    assert grant(one, 1, 2, 3) == OK  # the reclaim: group 3 never took it
    assert install_from(two, one, Source(1, 1, servers_of(1))) == OK
    assert one.apply({"op": "drop", "config_num": 1, "shard": SHARD}) == OK
    assert one.handoff(1, SHARD) is None
    for state in (one, ShardKVState.restore(one.snapshot())):
        given = state.grant_of(1, SHARD)
        assert given is not None and (given.gid, given.config_num) == (2, 3)
