"""The shardmaster state machine: the course's Lab 4A checks run on the core, plus config
wire form, bad ops, and snapshot/restore.

The course tests (TestBasic's parts, TestUnreliable's concurrent join/leave) are replayed as
op sequences on one `ShardmasterState`: the Paxos log only fixes an order, and the core must
give the right configs for any order.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from typing import Any

import cbor2
import pytest

import diskv_trio.shardmaster as shardmaster
from diskv_trio.shardmaster import (
    ERROR_BAD_OP,
    ERROR_UNKNOWN_GROUP,
    SHARD_COUNT,
    Config,
    ShardmasterState,
)


def join(state: ShardmasterState, gid: int, servers: list[str]) -> dict[str, Any]:
    reply = state.apply({"op": "join", "gid": gid, "servers": servers})
    assert reply["err"] == "OK", reply
    return reply


def leave(state: ShardmasterState, gid: int) -> dict[str, Any]:
    reply = state.apply({"op": "leave", "gid": gid})
    assert reply["err"] == "OK", reply
    return reply


def move(state: ShardmasterState, shard: int, gid: int) -> dict[str, Any]:
    reply = state.apply({"op": "move", "shard": shard, "gid": gid})
    assert reply["err"] == "OK", reply
    return reply


def query(state: ShardmasterState, num: int = -1) -> Config:
    reply = state.apply({"op": "query", "num": num})
    assert reply["err"] == "OK", reply
    return Config.from_wire(reply["config"])


def check(config: Config, groups: set[int]) -> None:
    """The course's check(): exactly these groups, shards on them, counts within one."""
    assert set(config.groups) == groups
    if groups:
        assert all(gid in groups for gid in config.shards)
    counts = Counter(config.shards)
    per_group = [counts.get(gid, 0) for gid in groups]
    if per_group:
        assert max(per_group) <= min(per_group) + 1


LAZY_EXPORTS = {"shardmaster_node"}


def test_exports_match_all() -> None:
    for name in set(shardmaster.__all__) - LAZY_EXPORTS:
        assert hasattr(shardmaster, name), name
    public = {name for name in dir(shardmaster) if not name.startswith("_")}
    assert public - set(shardmaster.__all__) <= {"annotations", "TYPE_CHECKING", "Any"}


def test_lazy_exports_load_the_server() -> None:
    try:
        importlib.import_module("diskv_trio.rsm")
    except ImportError as error:
        pytest.skip(f"server stack not importable: {error}")
    for name in LAZY_EXPORTS:
        assert callable(getattr(shardmaster, name))
    assert not hasattr(shardmaster, "no_such_name")


def test_basic_leave_join_and_historical_queries() -> None:
    """TestBasic parts 1 and 2: duplicate join/leave change nothing; history is kept."""
    state = ShardmasterState()
    recorded = [query(state)]
    check(recorded[0], set())
    assert recorded[0] == Config.initial()

    join(state, 1, ["x", "y", "z"])
    recorded.append(query(state))
    check(recorded[-1], {1})
    join(state, 2, ["a", "b", "c"])
    recorded.append(query(state))
    check(recorded[-1], {1, 2})

    before = state.latest
    reply = join(state, 2, ["a", "b", "c"])
    assert reply["changed"] is False
    assert state.latest == before
    check(state.latest, {1, 2})
    assert state.latest.groups[1] == ("x", "y", "z")
    assert state.latest.groups[2] == ("a", "b", "c")
    # A repeated join naming other servers does not replace the group's servers either.
    join(state, 2, ["q"])
    assert state.latest.groups[2] == ("a", "b", "c")
    recorded.append(query(state))

    leave(state, 1)
    recorded.append(query(state))
    check(recorded[-1], {2})
    reply = leave(state, 1)
    assert reply["changed"] is False
    recorded.append(query(state))
    check(recorded[-1], {2})

    for config in recorded:
        assert query(state, config.num) == config
        assert state.query(config.num) == config
    assert query(state, 10**9) == state.latest
    assert query(state, -1) == state.latest


def test_move_assigns_one_shard_and_does_not_rebalance() -> None:
    """TestBasic part 3: Move raises Num when the owner changes; no rebalance."""
    state = ShardmasterState()
    join(state, 503, ["3a", "3b", "3c"])
    join(state, 504, ["4a", "4b", "4c"])
    for shard in range(SHARD_COUNT):
        before = state.latest
        target = 503 if shard < 5 else 504
        reply = move(state, shard, target)
        after = state.latest
        changed = before.shards[shard] != target
        assert reply["changed"] is changed
        assert (after.num > before.num) is changed
        assert after.shards[shard] == target
        assert [g for i, g in enumerate(after.shards) if i != shard] == [
            g for i, g in enumerate(before.shards) if i != shard
        ]
    assert state.latest.shards == (503,) * 5 + (504,) * 5
    leave(state, 503)
    leave(state, 504)
    check(state.latest, set())
    assert state.latest.shards == (0,) * SHARD_COUNT


def test_move_then_all_onto_one_group_is_kept_until_join() -> None:
    state = ShardmasterState()
    join(state, 1, ["a"])
    join(state, 2, ["b"])
    for shard in range(SHARD_COUNT):
        move(state, shard, 1)
    assert state.latest.shards == (1,) * SHARD_COUNT
    join(state, 3, ["c"])
    check(state.latest, {1, 2, 3})


def concurrent_join_leave(group_count: int, seed: int) -> ShardmasterState:
    """TestBasic part 4 / TestUnreliable: each "client" i does Join(gid+1000), Join(gid),
    Leave(gid+1000); the clients' ops interleave in a random log order."""
    rng = random.Random(seed)
    queues = {
        gid: [
            {"op": "join", "gid": gid + 1000, "servers": [f"s{gid + 1000}"]},
            {"op": "join", "gid": gid, "servers": [f"s{gid}"]},
            {"op": "leave", "gid": gid + 1000},
        ]
        for gid in range(1, group_count + 1)
    }
    state = ShardmasterState()
    # Part 1 of TestBasic left gid 2 joined and gid 1 gone; part 4 re-joins 1 and repeats 2.
    join(state, 1, ["s1"])
    join(state, 2, ["s2"])
    leave(state, 1)
    while queues:
        gid = rng.choice(sorted(queues))
        assert state.apply(queues[gid].pop(0))["err"] == "OK"
        if not queues[gid]:
            del queues[gid]
        check(state.latest, set(state.latest.groups))
    return state


@pytest.mark.parametrize("seed", range(20))
def test_concurrent_leave_join_ten_groups_one_shard_each(seed: int) -> None:
    state = concurrent_join_leave(10, seed)
    check(state.latest, set(range(1, 11)))
    assert Counter(state.latest.shards) == Counter({gid: 1 for gid in range(1, 11)})
    assert state.latest.groups[1] == ("s1",)


@pytest.mark.parametrize("seed", range(10))
def test_concurrent_leave_join_twenty_groups(seed: int) -> None:
    state = concurrent_join_leave(20, seed)
    check(state.latest, set(range(1, 21)))
    counts = Counter(state.latest.shards)
    assert sorted(counts.get(gid, 0) for gid in range(1, 21)) == [0] * 10 + [1] * 10


def test_minimal_transfers_after_joins_and_leaves() -> None:
    """TestBasic parts 6 and 7, with 10 groups holding one shard each and 5 more joining."""
    state = concurrent_join_leave(10, seed=1)
    c1 = query(state)
    for gid in range(11, 16):
        join(state, gid, [f"s{gid}"])
    c2 = query(state)
    for shard in range(SHARD_COUNT):
        if c2.shards[shard] in range(1, 11):
            assert c1.shards[shard] == c2.shards[shard], "non-minimal transfer after Join()s"
    assert c2.shards == c1.shards
    for gid in range(11, 16):
        leave(state, gid)
    c3 = query(state)
    for shard in range(SHARD_COUNT):
        if c2.shards[shard] in range(1, 11):
            assert c3.shards[shard] == c2.shards[shard], "non-minimal transfer after Leave()s"
    check(c3, set(range(1, 11)))


def test_rejoin_after_leave_gets_shards_and_new_servers() -> None:
    state = ShardmasterState()
    join(state, 1, ["a"])
    join(state, 2, ["b"])
    leave(state, 1)
    assert state.latest.shards == (2,) * SHARD_COUNT
    reply = join(state, 1, ["a2"])
    assert reply["changed"] is True
    check(state.latest, {1, 2})
    assert state.latest.groups[1] == ("a2",)
    assert Counter(state.latest.shards) == Counter({1: 5, 2: 5})


BAD_OPS: list[tuple[object, str]] = [
    ("join", ERROR_BAD_OP),
    ({}, ERROR_BAD_OP),
    ({"op": "frobnicate"}, ERROR_BAD_OP),
    ({"op": 3}, ERROR_BAD_OP),
    ({"op": "join", "gid": 0, "servers": ["a"]}, ERROR_BAD_OP),
    ({"op": "join", "gid": -4, "servers": ["a"]}, ERROR_BAD_OP),
    ({"op": "join", "gid": True, "servers": ["a"]}, ERROR_BAD_OP),
    ({"op": "join", "gid": "5", "servers": ["a"]}, ERROR_BAD_OP),
    ({"op": "join", "gid": 2**63, "servers": ["a"]}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5, "servers": []}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5, "servers": "abc"}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5, "servers": [1, 2]}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5, "servers": [""]}, ERROR_BAD_OP),
    ({"op": "join", "gid": 5, "servers": ["a"] * 65}, ERROR_BAD_OP),
    ({"op": "leave"}, ERROR_BAD_OP),
    ({"op": "leave", "gid": 0}, ERROR_BAD_OP),
    ({"op": "leave", "gid": 1.0}, ERROR_BAD_OP),
    ({"op": "move", "shard": SHARD_COUNT, "gid": 1}, ERROR_BAD_OP),
    ({"op": "move", "shard": -1, "gid": 1}, ERROR_BAD_OP),
    ({"op": "move", "shard": "0", "gid": 1}, ERROR_BAD_OP),
    ({"op": "move", "gid": 1}, ERROR_BAD_OP),
    ({"op": "move", "shard": 0, "gid": 0}, ERROR_BAD_OP),
    ({"op": "move", "shard": 0, "gid": 99}, ERROR_UNKNOWN_GROUP),
    ({"op": "query"}, ERROR_BAD_OP),
    ({"op": "query", "num": "latest"}, ERROR_BAD_OP),
    ({"op": "query", "num": None}, ERROR_BAD_OP),
]


@pytest.mark.parametrize(("op", "code"), BAD_OPS)
def test_bad_op_is_rejected_and_changes_nothing(op: object, code: str) -> None:
    state = ShardmasterState()
    join(state, 1, ["a"])
    before = state.snapshot()
    reply = state.apply(op)
    assert reply["err"] != "OK"
    assert reply["err"] == code
    assert isinstance(reply["message"], str) and reply["message"]
    assert state.snapshot() == before


def random_history(seed: int, op_count: int) -> ShardmasterState:
    rng = random.Random(seed)
    state = ShardmasterState()
    for _ in range(op_count):
        kind = rng.choice(["join", "join", "leave", "move"])
        gid = rng.randint(1, 15)
        if kind == "join":
            state.apply({"op": kind, "gid": gid, "servers": [f"h{gid}-{i}" for i in range(3)]})
        elif kind == "leave":
            state.apply({"op": kind, "gid": gid})
        else:
            state.apply({"op": kind, "shard": rng.randrange(SHARD_COUNT), "gid": gid})
    return state


@pytest.mark.parametrize("seed", range(5))
def test_snapshot_restore_round_trip_through_cbor(seed: int) -> None:
    state = random_history(seed, 60)
    snapshot = cbor2.loads(cbor2.dumps(state.snapshot()))
    restored = ShardmasterState.restore(snapshot)
    assert restored.snapshot() == state.snapshot()
    assert restored.latest == state.latest
    for num in range(state.latest.num + 1):
        assert restored.query(num) == state.query(num)
    # Both continue identically.
    for op in (
        {"op": "join", "gid": 77, "servers": ["z"]},
        {"op": "leave", "gid": 3},
        {"op": "move", "shard": 4, "gid": 77},
    ):
        assert restored.apply(op) == state.apply(op)
    assert restored.snapshot() == state.snapshot()


@pytest.mark.parametrize(
    "snapshot",
    [
        None,
        {},
        {"version": 2, "configs": [Config.initial().to_wire()]},
        {"version": 1, "configs": []},
        {"version": 1, "configs": [Config(1, (0,) * SHARD_COUNT).to_wire()]},
        {"version": 1, "configs": [Config.initial().to_wire(), Config.initial().to_wire()]},
        {"version": 1, "configs": [{"num": 0}]},
    ],
)
def test_restore_refuses_bad_snapshots(snapshot: object) -> None:
    with pytest.raises(ValueError):
        ShardmasterState.restore(snapshot)


def test_config_wire_round_trip_and_key_forms() -> None:
    config = Config(4, (2, 2, 2, 2, 2, 7, 7, 7, 7, 7), {7: ("c", "d"), 2: ("a", "b")})
    assert list(config.groups) == [2, 7]
    wire = config.to_wire()
    assert wire == {
        "num": 4,
        "shards": [2, 2, 2, 2, 2, 7, 7, 7, 7, 7],
        "groups": {2: ["a", "b"], 7: ["c", "d"]},
        "sharding": {"count": 10, "scheme": "first-char"},
    }
    assert Config.from_wire(cbor2.loads(cbor2.dumps(wire))) == config
    # A config from before the sharding field is the course layout it always was.
    assert Config.from_wire({k: v for k, v in wire.items() if k != "sharding"}) == config
    as_text_keys = {**wire, "groups": {"2": ["a", "b"], "7": ["c", "d"]}}
    assert Config.from_wire(as_text_keys) == config
    assert hash(Config.from_wire(wire)) == hash(config)
    assert config.shards_of(7) == frozenset(range(5, 10))
    with pytest.raises(TypeError):
        config.groups[9] = ("x",)  # type: ignore[index]


GOOD_WIRE = Config(1, (3,) * SHARD_COUNT, {3: ("a",)}).to_wire()


@pytest.mark.parametrize(
    ("wire", "fragment"),
    [
        ([], "must be a map"),
        ({"num": 1, "shards": GOOD_WIRE["shards"]}, "lacks"),
        ({**GOOD_WIRE, "extra": 1}, "unknown field"),
        ({**GOOD_WIRE, "num": -1}, "num"),
        ({**GOOD_WIRE, "num": "1"}, "num"),
        ({**GOOD_WIRE, "shards": [3] * 9}, "10 entries"),
        ({**GOOD_WIRE, "shards": "3333333333"}, "shards"),
        ({**GOOD_WIRE, "shards": [3] * 9 + [4]}, "not a group"),
        ({**GOOD_WIRE, "shards": [3] * 9 + [None]}, "shard 9"),
        ({**GOOD_WIRE, "groups": [[3, ["a"]]]}, "groups must be a map"),
        ({**GOOD_WIRE, "groups": {3: ["a"], "03": ["b"]}}, "gid"),
        ({**GOOD_WIRE, "groups": {3: ["a"], "3": ["b"]}}, "twice"),
        ({**GOOD_WIRE, "groups": {3: "a"}}, "servers"),
        ({**GOOD_WIRE, "groups": {3: [], 4: ["b"]}}, "empty"),
    ],
)
def test_config_from_wire_rejects_bad_input(wire: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Config.from_wire(wire)
