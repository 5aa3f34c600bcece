"""Shardmaster arguments are validated into typed ops before anything reaches the log.

`build_op` is checked on a case table and on random arguments of random shapes (it returns
a typed op or raises ValueError, nothing else); the servers are checked end to end: a bad
call gets ErrBadRequest and the log does not grow, and the state machine never raises on
random ops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sm_harness import shardmasters

from diskv_trio.kvproto import SHARD_COUNT_MAX
from diskv_trio.net import Identity, RpcRemoteError, open_rpc_pool
from diskv_trio.shardmaster import (
    CONFIG_NUM_MAX,
    GID_MAX,
    SHARD_COUNT,
    JoinOp,
    LeaveOp,
    MoveOp,
    QueryOp,
    ShardmasterState,
    build_op,
)


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


GOOD = [
    ("join", {"gid": 1, "servers": ["a", "b"]}, JoinOp(1, ("a", "b"))),
    ("join", {"gid": GID_MAX, "servers": ("a",), "extra": nest(300)}, JoinOp(GID_MAX, ("a",))),
    ("leave", {"gid": 7}, LeaveOp(7)),
    ("move", {"shard": SHARD_COUNT - 1, "gid": 2}, MoveOp(SHARD_COUNT - 1, 2)),
    ("query", {"num": -1}, QueryOp(-1)),
    ("query", {"num": CONFIG_NUM_MAX}, QueryOp(CONFIG_NUM_MAX)),
]

cyclic: list[Any] = []
cyclic.append(cyclic)

BAD = [
    ("query", {"num": nest(390)}),  # the deep value that once bricked the shardmaster
    ("query", {"num": cyclic}),
    ("query", {"num": -2}),
    ("query", {"num": CONFIG_NUM_MAX + 1}),
    ("query", {"num": True}),
    ("query", {}),
    ("join", {"gid": 1, "servers": cyclic}),
    ("join", {"gid": 1, "servers": []}),
    ("join", {"gid": 1, "servers": ["a"] * 65}),
    ("join", {"gid": 1, "servers": ["x" * 1025]}),
    ("join", {"gid": 1, "servers": "abc"}),
    ("join", {"gid": 0, "servers": ["a"]}),
    ("join", {"gid": GID_MAX + 1, "servers": ["a"]}),
    ("leave", {"gid": -1}),
    ("leave", {"gid": 1.0}),
    ("move", {"shard": SHARD_COUNT_MAX, "gid": 1}),
    ("move", {"shard": -1, "gid": 1}),
    ("move", {"gid": 1}),
    ("join", [1, 2]),
    ("nope", {"gid": 1}),
]


@pytest.mark.parametrize("name, args, expected", GOOD)
def test_build_op_builds_only_the_fields_it_reads(name: str, args: Any, expected: Any) -> None:
    op = build_op(name, args)
    assert op == expected
    assert "extra" not in op.to_log()
    reply = ShardmasterState().apply(op.to_log())
    assert reply["err"] in ("OK", "ErrUnknownGroup")  # well formed: move to gid 2


@pytest.mark.parametrize("name, args", BAD)
def test_build_op_refuses_bad_arguments(name: str, args: Any) -> None:
    with pytest.raises(ValueError):
        build_op(name, args)


json_like = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**65), max_value=2**65),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=5),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=7), children, max_size=4)
    ),
    max_leaves=15,
)
shaped_args = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {},
        optional={
            "gid": st.one_of(json_like, st.integers()),
            "servers": st.one_of(json_like, st.lists(st.text(max_size=3), max_size=3)),
            "shard": st.one_of(json_like, st.integers(-2, SHARD_COUNT + 1)),
            "num": st.one_of(json_like, st.integers()),
        },
    ),
)


@settings(max_examples=300)
@given(st.sampled_from(["join", "leave", "move", "query", "other"]), shaped_args)
def test_build_op_returns_a_typed_op_or_value_error(name: str, args: Any) -> None:
    try:
        op = build_op(name, args)
    except ValueError:
        return
    assert isinstance(op, JoinOp | LeaveOp | MoveOp | QueryOp)
    reply = ShardmasterState().apply(op.to_log())
    if isinstance(op, MoveOp) and op.shard >= SHARD_COUNT:
        # The cluster's shard count is known only where the op is applied.
        assert reply["err"] == "ErrBadOp"
    else:
        assert reply["err"] in ("OK", "ErrUnknownGroup")  # a built op is well formed


@settings(max_examples=300)
@given(
    st.one_of(
        json_like,
        st.builds(
            lambda name, args: {**args, "op": name} if isinstance(args, dict) else args,
            st.sampled_from(["join", "leave", "move", "query"]),
            shaped_args,
        ),
    )
)
def test_state_machine_apply_never_raises(op: Any) -> None:
    state = ShardmasterState()
    state.apply({"op": "join", "gid": 1, "servers": ["a"]})
    reply = state.apply(op)
    assert isinstance(reply, dict) and isinstance(reply["err"], str)


async def test_server_refuses_bad_arguments_before_the_log(short_tmp: Path) -> None:
    async with shardmasters(short_tmp) as group:
        rsm = group.nodes[0].rsm
        assert rsm is not None
        async with open_rpc_pool(Identity("test", "operator", "validation-test")) as pool:
            address = group.addresses[0]
            await pool.call(address, "sm.query", {"num": -1}, deadline_s=5)
            before = (rsm.applied, rsm.peer.max())
            for method, args in [
                ("sm.query", {"num": nest(20)}),
                ("sm.query", {"num": "1"}),
                ("sm.join", {"gid": 1, "servers": [nest(10)]}),
                ("sm.join", {"gid": -3, "servers": ["a"]}),
                ("sm.move", {"shard": 99, "gid": 1}),
                ("sm.leave", {}),
            ]:
                with pytest.raises(RpcRemoteError) as info:
                    await pool.call(address, method, args, deadline_s=5)
                assert info.value.code == "ErrBadRequest", info.value
            assert (rsm.applied, rsm.peer.max()) == before  # nothing was proposed
            reply = await pool.call(
                address, "sm.join", {"gid": 1, "servers": ["a"], "junk": nest(20)}, deadline_s=5
            )
            assert reply["err"] == "OK"
            # The leader applied the join before answering (node 0 forwarded it if it
            # does not lead): its last applied entry holds the validated op alone.
            leaders = [n.rsm for n in group.nodes if n.rsm is not None and n.rsm.peer.leading.value]
            assert len(leaders) == 1
            leader = leaders[0]
            assert leader.peer.status(leader.applied)[1]["ops"] == [
                {
                    "op": "join",
                    "gid": 1,
                    "servers": ["a"],
                    "sharding": {"count": 10, "scheme": "first-char"},
                }
            ]
