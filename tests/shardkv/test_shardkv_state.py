"""The shardkv state machine, op by op: client ops, at-most-once, reconfiguration in log
order, waiting shards, install with duplicate-table merge, handoff and drop, bad ops, and
snapshot/restore.

Each test applies ops to one or more `ShardKVState` cores the way the servers' logs would
and checks the replies and the resulting state.
"""

from __future__ import annotations

import importlib
from typing import Any

import cbor2
import pytest
from shardkv_core_helpers import (
    all_shards_on,
    append,
    get,
    key_in,
    key_to_shard,
    make_config,
    pull_into,
    put,
    reconfig,
    servers_of,
)

import diskv_trio.shardkv as shardkv
from diskv_trio.shardkv import ShardDrop, ShardKVState, ShardPull
from diskv_trio.shardmaster import SHARD_COUNT, Config

OK = {"err": "OK"}
WRONG = {"err": "ErrWrongGroup"}


def owning_all(gid: int) -> ShardKVState:
    state = ShardKVState(gid)
    assert reconfig(state, make_config(1, all_shards_on(gid))) == OK
    return state


LAZY_EXPORTS = {"shardkv_node"}


def test_exports_match_all() -> None:
    for name in set(shardkv.__all__) - LAZY_EXPORTS:
        assert hasattr(shardkv, name), name
    public = {name for name in dir(shardkv) if not name.startswith("_")}
    assert public - set(shardkv.__all__) <= {"annotations", "TYPE_CHECKING", "Any"}


def test_lazy_exports_load_the_server() -> None:
    try:
        importlib.import_module("diskv_trio.rsm")
    except ImportError as error:
        pytest.skip(f"server stack not importable: {error}")
    for name in LAZY_EXPORTS:
        assert callable(getattr(shardkv, name))
    assert not hasattr(shardkv, "no_such_name")


@pytest.mark.parametrize(
    ("key", "shard"),
    [
        ("", 0),
        ("0", 48 % 10),
        ("9zz", 57 % 10),
        ("a", 97 % 10),
        ("é", 233 % 10),
        ("😀", 128512 % 10),
    ],
)
def test_key_to_shard_uses_first_code_point(key: str, shard: int) -> None:
    assert key_to_shard(key) == shard


def test_put_get_append() -> None:
    state = owning_all(1)
    assert get(state, "a") == {"err": "ErrNoKey"}  # absent, not empty
    assert put(state, "a", "x", "c1", 1) == OK
    assert append(state, "a", "b", "c1", 2) == OK
    assert get(state, "a") == {"err": "OK", "value": "xb"}
    assert append(state, "new", "v", "c1", 3) == OK
    assert get(state, "new") == {"err": "OK", "value": "v"}
    assert put(state, "a", "y", "c2", 1) == OK
    assert get(state, "a") == {"err": "OK", "value": "y"}
    assert get(state, "") == {"err": "ErrNoKey"}


def test_config_zero_owns_nothing() -> None:
    state = ShardKVState(1)
    assert state.config == Config.initial()
    assert state.previous_config is None
    assert get(state, "a") == WRONG
    assert put(state, "a", "x", "c", 1) == WRONG


def test_duplicate_put_append_apply_once() -> None:
    state = owning_all(1)
    key = key_in(3)
    assert append(state, key, "x", "c1", 1) == OK
    assert append(state, key, "x", "c1", 1) == OK  # retry of the same op
    assert get(state, key)["value"] == "x"
    assert append(state, key, "y", "c1", 2) == OK
    assert append(state, key, "z", "c1", 1) == OK  # an older op arriving late
    assert get(state, key)["value"] == "xy"
    assert append(state, key, "w", "c2", 1) == OK  # another client's seq 1 is its own
    assert get(state, key)["value"] == "xyw"
    assert put(state, key, "P", "c2", 1) == OK
    assert get(state, key)["value"] == "xyw"


def test_get_is_never_recorded() -> None:
    state = owning_all(1)
    put(state, "k", "v" * 100, "c", 1)
    before = state.snapshot()
    bytes_before = state.live_bytes()
    for seq in range(5):
        assert state.apply({"op": "get", "key": "k", "client": "c", "seq": 10 + seq}) == {
            "err": "OK",
            "value": b"v" * 100,
        }
    assert state.snapshot() == before
    assert state.live_bytes() == bytes_before
    # A get needs no client id: it is never deduplicated.
    assert state.apply({"op": "get", "key": "k"})["value"] == b"v" * 100


def test_wrong_group_is_decided_by_log_position() -> None:
    state = owning_all(1)
    moved, kept = key_in(2), key_in(5)
    assert put(state, moved, "before", "c", 1) == OK
    shards = all_shards_on(1)
    shards[2] = 2
    assert reconfig(state, make_config(2, shards)) == OK
    assert put(state, moved, "after", "c", 2) == WRONG
    assert get(state, moved) == WRONG
    assert put(state, kept, "fine", "c", 3) == OK
    assert state.handoff(1, 2) == ({moved.encode(): b"before"}, {"c": (1, None)})


def test_reconfig_applies_in_order_only() -> None:
    state = ShardKVState(1)
    c1, c2, c3 = (make_config(n, all_shards_on(1)) for n in (1, 2, 3))
    assert reconfig(state, c2) == {"err": "ErrNotReady"}
    assert state.config.num == 0
    assert reconfig(state, c1) == OK
    assert reconfig(state, c1) == {"err": "ErrStale"}
    assert reconfig(state, c3) == {"err": "ErrNotReady"}
    assert reconfig(state, c2) == OK
    assert state.config == c2
    assert state.previous_config == c1
    assert reconfig(state, c1) == {"err": "ErrStale"}


def test_shards_gained_from_gid_zero_start_empty_and_present() -> None:
    state = ShardKVState(1)
    reconfig(state, make_config(1, [1] * 5 + [2] * 5))
    assert state.present_shards == frozenset(range(5))
    assert state.waiting == frozenset()
    assert state.pending_pulls() == []
    # Group 2 leaves; group 1 gains shards 5..9 from group 2: they wait.
    reconfig(state, make_config(2, all_shards_on(1)))
    assert state.waiting == frozenset(range(5, 10))
    assert state.pending_pulls() == [ShardPull(s, 1, 2) for s in range(5, 10)]
    assert state.previous_config is not None
    assert state.previous_config.groups[2] == servers_of(2)


def test_waiting_shard_refuses_ops_and_blocks_reconfig_until_installed() -> None:
    a, b = ShardKVState(1), ShardKVState(2)
    c1 = make_config(1, all_shards_on(1))
    c2 = make_config(2, [1] * 5 + [2] * 5)
    c3 = make_config(3, [1] * 4 + [2] * 6)
    for state in (a, b):
        reconfig(state, c1)
    key = key_in(7)
    assert put(a, key, "v", "c", 1) == OK
    for state in (a, b):
        assert reconfig(state, c2) == OK
    assert b.waiting == frozenset(range(5, 10))
    assert get(b, key) == WRONG
    assert put(b, key, "w", "c", 2) == WRONG
    assert reconfig(b, c3) == {"err": "ErrNotReady"}

    # A half-finished transfer keeps the others waiting.
    data, dedup = a.handoff(1, 7) or ({}, {})
    install = {"op": "install", "shard": 7, "data": data, "dedup": dedup}
    assert b.apply({**install, "config_num": 1}) == {"err": "ErrStale"}
    assert b.apply({**install, "config_num": 3}) == {"err": "ErrNotReady"}
    assert b.apply({**install, "config_num": 2}) == OK
    assert b.apply({**install, "config_num": 2}) == {"err": "ErrStale"}  # already installed
    assert get(b, key) == {"err": "OK", "value": "v"}
    assert b.waiting == frozenset({5, 6, 8, 9})
    assert reconfig(b, c3) == {"err": "ErrNotReady"}

    assert pull_into(b, {1: a}) == 4
    assert b.waiting == frozenset()
    assert reconfig(b, c3) == OK


def test_install_merges_duplicate_table_so_old_owner_ops_are_not_reapplied() -> None:
    a, b = ShardKVState(1), ShardKVState(2)
    c1 = make_config(1, all_shards_on(1))
    c2 = make_config(2, [1] * 5 + [2] * 5)
    for state in (a, b):
        reconfig(state, c1)
    key = key_in(6)
    assert append(a, key, "x", "client", 5) == OK  # applied at A; the reply is "lost"
    for state in (a, b):
        reconfig(state, c2)
    assert append(a, key, "x", "client", 5) == WRONG  # the retry reaches A too late
    assert pull_into(b, {1: a}) == 5
    assert append(b, key, "x", "client", 5) == OK  # ... and then B: a duplicate
    assert get(b, key)["value"] == "x"
    assert append(b, key, "y", "client", 6) == OK
    assert get(b, key)["value"] == "xy"
    assert b.snapshot()["shards"][1] == [6, {key.encode(): b"xy"}, {"client": [6, None]}]


def test_handoff_only_after_moving_past_and_drop_is_idempotent() -> None:
    a, b = ShardKVState(1), ShardKVState(2)
    c1 = make_config(1, all_shards_on(1))
    c2 = make_config(2, [1] * 9 + [2])
    key = key_in(9, "-key")
    for state in (a, b):
        reconfig(state, c1)
    put(a, key, "value", "c", 1)
    assert a.handoff(1, 9) is None  # A has not moved past config 1 yet
    reconfig(a, c2)
    bytes_with_handoff = a.live_bytes()
    handoff = a.handoff(1, 9)
    assert handoff == ({key.encode(): b"value"}, {"c": (1, None)})
    handoff[0][key] = "changed by the caller"
    assert a.handoff(1, 9) == ({key.encode(): b"value"}, {"c": (1, None)})
    assert a.handoff(0, 9) is None and a.handoff(1, 8) is None
    assert a.handoff_keys() == [(1, 9)]

    reconfig(b, c2)
    assert pull_into(b, {1: a}) == 1
    assert b.pending_drops() == [ShardDrop(9, 1, 1, servers_of(1))]
    drop = b.pending_drops()[0]
    for _ in range(2):  # the old group may see the drop twice
        assert a.apply({"op": "drop", "config_num": drop.config_num, "shard": drop.shard}) == OK
    assert a.handoff(1, 9) is None
    assert a.handoff_keys() == []
    assert a.live_bytes() < bytes_with_handoff
    assert a.live_bytes() == a.recount_live_bytes()
    for _ in range(2):
        ack = {"op": "dropped_ack", "config_num": drop.config_num, "shard": drop.shard}
        assert b.apply(ack) == OK
    assert b.pending_drops() == []


def test_shard_moves_a_to_b_to_a() -> None:
    groups = {1: ShardKVState(1), 2: ShardKVState(2)}
    a, b = groups[1], groups[2]
    configs = [
        make_config(1, all_shards_on(1)),
        make_config(2, [1] * 9 + [2]),
        make_config(3, all_shards_on(1)),
    ]
    key = key_in(9)
    reconfig(a, configs[0]), reconfig(b, configs[0])
    assert append(a, key, "1", "c", 1) == OK
    reconfig(a, configs[1]), reconfig(b, configs[1])
    pull_into(b, groups)
    assert append(b, key, "2", "c", 2) == OK
    reconfig(a, configs[2])
    assert a.pending_pulls() == [ShardPull(9, 2, 2)]
    assert pull_into(a, groups) == 0  # B has not moved past config 2 yet
    assert append(b, key, "3", "c", 3) == OK  # still B's in B's log position
    reconfig(b, configs[2])
    assert append(b, key, "4", "c", 4) == WRONG
    assert pull_into(a, groups) == 1
    assert get(a, key) == {"err": "OK", "value": "123"}
    assert append(a, key, "3", "c", 3) == OK  # duplicate of the op applied at B
    assert get(a, key)["value"] == "123"
    # A still holds its old handoff (1, 9) until B's drop; both handoffs coexist.
    assert a.handoff_keys() == [(1, 9)]
    assert b.handoff_keys() == [(2, 9)]
    assert [d[:3] for d in a.pending_drops()] == [(9, 2, 2)]
    assert [d[:3] for d in b.pending_drops()] == [(9, 1, 1)]


BAD_OPS: list[object] = [
    None,
    "put",
    ["op", "get"],
    {},
    {"op": "delete", "key": "a"},
    {"op": "get"},
    {"op": "get", "key": 5},
    {"op": "put", "key": "a", "client": "c", "seq": 1},
    {"op": "put", "key": "a", "value": 1, "client": "c", "seq": 1},
    {"op": "put", "key": "a", "value": "v", "seq": 1},
    {"op": "put", "key": "a", "value": "v", "client": "c"},
    {"op": "append", "key": "a", "value": "v", "client": "c", "seq": -1},
    {"op": "append", "key": "a", "value": "v", "client": "c", "seq": True},
    {"op": "append", "key": "a", "value": "v", "client": "c", "seq": 1.5},
    {"op": "reconfig"},
    {"op": "reconfig", "config": {"num": 2}},
    {"op": "reconfig", "config": {"num": 2, "shards": [1] * 10, "groups": {}}},
    {"op": "install", "config_num": 1, "shard": 0, "data": {}},
    {"op": "install", "config_num": 1, "shard": 10, "data": {}, "dedup": {}},
    {"op": "install", "config_num": "1", "shard": 0, "data": {}, "dedup": {}},
    {"op": "install", "config_num": 1, "shard": 0, "data": {"e": "v"}, "dedup": {}},
    {"op": "install", "config_num": 1, "shard": 0, "data": {"d": 5}, "dedup": {}},
    {"op": "install", "config_num": 1, "shard": 0, "data": [], "dedup": {}},
    {"op": "install", "config_num": 1, "shard": 0, "data": {}, "dedup": {"c": -1}},
    {"op": "install", "config_num": 1, "shard": 0, "data": {}, "dedup": {3: 1}},
    {"op": "drop", "config_num": 1},
    {"op": "drop", "config_num": -1, "shard": 0},
    {"op": "dropped_ack", "shard": 0},
]


@pytest.mark.parametrize("op", BAD_OPS)
def test_bad_op_gets_err_bad_op_and_changes_nothing(op: object) -> None:
    state = owning_all(1)
    put(state, "a", "x", "c", 1)
    before = state.snapshot()
    reply = state.apply(op)
    assert reply["err"] == "ErrBadOp"
    assert isinstance(reply["message"], str) and reply["message"]
    assert state.snapshot() == before


def busy_pair() -> tuple[ShardKVState, ShardKVState]:
    """Two groups mid-transfer: waiting shards, a handoff, a pending drop, data, dedup."""
    a, b = ShardKVState(1), ShardKVState(2)
    c1 = make_config(1, all_shards_on(1))
    c2 = make_config(2, [1] * 5 + [2] * 5)
    for state in (a, b):
        reconfig(state, c1)
    for shard in range(SHARD_COUNT):
        put(a, key_in(shard, "k"), f"value{shard}", f"client{shard % 3}", shard + 1)
    for state in (a, b):
        reconfig(state, c2)
    data, dedup = a.handoff(1, 5) or ({}, {})
    b.apply({"op": "install", "config_num": 2, "shard": 5, "data": data, "dedup": dedup})
    return a, b


def test_snapshot_restore_round_trip_through_cbor() -> None:
    for state in busy_pair():
        snapshot = state.snapshot()
        restored = ShardKVState.restore(cbor2.loads(cbor2.dumps(snapshot)))
        assert restored.snapshot() == snapshot
        assert restored.gid == state.gid
        assert restored.config == state.config
        assert restored.previous_config == state.previous_config
        assert restored.waiting == state.waiting
        assert restored.pending_pulls() == state.pending_pulls()
        assert restored.pending_drops() == state.pending_drops()
        assert restored.handoff_keys() == state.handoff_keys()
        assert restored.live_bytes() == state.live_bytes()


def test_snapshot_is_a_copy() -> None:
    a, _ = busy_pair()
    snapshot = a.snapshot()
    put(a, key_in(0, "k"), "changed", "z", 1)
    assert snapshot["shards"][0][1][key_in(0, "k").encode()] == b"value0"


def test_snapshot_stores_each_value_once() -> None:
    state = owning_all(1)
    big = "v" * 10_000
    put(state, "a", big, "c", 1)
    for seq in range(2, 20):
        get(state, "a")
        append(state, "b", "x", "c", seq)
    encoded = cbor2.dumps(state.snapshot())
    assert encoded.count(big.encode()) == 1
    assert len(encoded) < len(big) + 500


def mutate(snapshot: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**snapshot, **changes}


def test_restore_refuses_bad_snapshots() -> None:
    a, b = busy_pair()
    good_b = b.snapshot()
    bad: list[object] = [
        None,
        [],
        mutate(good_b, version=99),
        mutate(good_b, gid=0),
        mutate(good_b, waiting=[]),  # owned shards neither present nor waiting
        mutate(good_b, waiting=[5, 6, 7, 8, 9]),  # 5 both present and waiting
        mutate(good_b, previous_config=None),
        mutate(good_b, shards=[[6, {"e": "v"}, {}]]),  # key of the wrong shard
        mutate(good_b, shards=[[5, {}, {}], [5, {}, {}]]),
        mutate(good_b, shards="nope"),
        mutate(good_b, drops=[[5, 1, 0, ["x"]]]),
        mutate(a.snapshot(), handoffs=[[2, 5, {}, {}]]),  # handoff not in the past
        {key: value for key, value in good_b.items() if key != "drops"},
    ]
    for snapshot in bad:
        with pytest.raises(ValueError):
            ShardKVState.restore(snapshot)


def test_live_bytes_tracks_state() -> None:
    state = owning_all(1)
    assert state.live_bytes() == 0
    put(state, "ab", "xyz", "c", 1)
    assert state.live_bytes() == len("ab") + len("xyz") + len("c") + 8
    append(state, "ab", "12", "c", 2)
    assert state.live_bytes() == len("ab") + len("xyz12") + len("c") + 8
    put(state, "ab", "", "c", 3)
    assert state.live_bytes() == len("ab") + len("c") + 8
    assert state.live_bytes() == state.recount_live_bytes()
