"""Shardkv ops are built from validated fields before they are proposed.

The builders (client ops from `kvproto.decode_op`, drop/dropped_ack, install from a pulled
shard) are checked on a
case table and on random arguments of random shapes: each returns a typed op or raises
ValueError, nothing else, and a built op applies without ErrBadOp. The state machine is
checked to never raise on random ops.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diskv_trio.kvproto import (
    COURSE_SHARDING,
    KEY_BYTES_MAX,
    NUMBER_MAX,
    VALUE_BYTES_MAX,
    Append,
    Cas,
    Delete,
    Get,
    Put,
)
from diskv_trio.kvproto import decode_op as client_op
from diskv_trio.net import ApplicationError
from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardkv._ops import InstallOp, ShardRefOp, install_op, shard_ref_op
from diskv_trio.shardkv._server import validate_client_op

cyclic: list[Any] = []
cyclic.append(cyclic)

BAD_CLIENT = [
    {"op": "put", "key": "k", "value": "v", "client": "c", "seq": 2**64},  # a bignum on the wire
    {"op": "put", "key": "k", "value": "v", "client": "c", "seq": -1},
    {"op": "put", "key": "k", "value": "v", "client": "c", "seq": True},
    {"op": "put", "key": "k", "value": cyclic, "client": "c", "seq": 1},
    {"op": "put", "key": "k", "value": "v", "client": "", "seq": 1},
    {"op": "put", "key": "k", "value": "v", "client": "c" * 65, "seq": 1},
    {"op": "get", "key": "k" * (KEY_BYTES_MAX + 1)},
    {"op": "get", "key": ["k"]},
    {"op": ["get"], "key": "k"},
    {"op": "delete", "key": "k"},  # a write without its session
    {"op": "cas", "key": "k", "new": b"v", "client": "c", "seq": 1},  # expected missing
    {"op": "cas", "key": "k", "expected": 7, "new": b"v", "client": "c", "seq": 1},
    {"op": "cas", "key": "k", "expected": b"x" * VALUE_BYTES_MAX, "new": b"v", "client": "c", "seq": 1},
    {"op": "put", "key": b"k", "value": b"v" * (VALUE_BYTES_MAX + 1), "client": "c", "seq": 1},
    {"op": "increment", "key": "k", "client": "c", "seq": 1},
    [1, 2, 3],
]


@pytest.mark.parametrize("args", BAD_CLIENT)
def test_bad_client_requests_are_refused(args: Any) -> None:
    with pytest.raises(ValueError):
        client_op(args)
    with pytest.raises(ApplicationError) as info:
        validate_client_op(args)
    assert info.value.code == "ErrBadRequest"


def test_a_client_op_carries_only_its_fields() -> None:
    op = client_op({"op": "put", "key": "k", "value": "v", "client": "c", "seq": 3, "x": cyclic})
    assert op.to_wire() == {"op": "put", "key": b"k", "value": b"v", "client": "c", "seq": 3}
    cas = client_op({"op": "cas", "key": b"k", "expected": None, "new": b"", "client": "c", "seq": 4})
    assert cas == Cas(b"k", None, b"", "c", 4)


@pytest.mark.parametrize(
    "reply",
    [
        {"data": {"b": "v"}, "dedup": {}},  # key "b" is shard 8, not 1
        {"data": {"a": 1}, "dedup": {}},
        {"data": {"a": "v"}, "dedup": {"c": -1}},
        {"data": {"a": "v"}, "dedup": {"c": NUMBER_MAX + 1}},
        {"data": [["a", "v"]]},
        {"data": {"a": cyclic}},
        "not a map",
    ],
)
def test_pulled_shards_are_checked_before_install(reply: Any) -> None:
    with pytest.raises(ValueError):
        install_op(3, ord("a") % 10, COURSE_SHARDING, reply)


json_like = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**65), max_value=2**65),
        st.floats(),
        st.text(max_size=5),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
client_args = st.fixed_dictionaries(
    {},
    optional={
        "op": st.one_of(st.sampled_from(["get", "put", "append", "delete", "cas"]), json_like),
        "key": st.one_of(st.text(max_size=4), json_like),
        "value": st.one_of(st.text(max_size=4), st.binary(max_size=4), json_like),
        "expected": st.one_of(st.none(), st.binary(max_size=4), json_like),
        "new": st.one_of(st.binary(max_size=4), json_like),
        "client": st.one_of(st.text(max_size=4), json_like),
        "seq": st.one_of(st.integers(-2, 10), json_like),
        "config_num": st.one_of(st.integers(-2, 10), json_like),
        "shard": st.one_of(st.integers(-2, 11), json_like),
        "data": st.one_of(st.dictionaries(st.text(max_size=3), st.text(max_size=3)), json_like),
        "dedup": st.one_of(st.dictionaries(st.text(max_size=3), st.integers(-1, 5)), json_like),
    },
)


def present_state() -> ShardKVState:
    state = ShardKVState(1)
    config = {"num": 1, "shards": [1] * 10, "groups": {1: ["a"]}}
    assert state.apply({"op": "reconfig", "config": config})["err"] == "OK"
    return state


@settings(max_examples=300)
@given(st.one_of(client_args, json_like))
def test_client_op_returns_a_typed_op_or_value_error(args: Any) -> None:
    try:
        op = client_op(args)
    except ValueError:
        return
    assert isinstance(op, Get | Put | Append | Delete | Cas)
    assert present_state().apply(op.to_wire())["err"] in ("OK", "ErrNoKey")


@settings(max_examples=200)
@given(st.sampled_from(["drop", "dropped_ack"]), st.one_of(client_args, json_like))
def test_shard_ref_op_returns_a_typed_op_or_value_error(name: str, args: Any) -> None:
    try:
        op = shard_ref_op(name, args)
    except ValueError:
        return
    assert isinstance(op, ShardRefOp)
    assert present_state().apply(op.to_log())["err"] == "OK"


@settings(max_examples=200)
@given(st.integers(-2, 5), st.integers(-1, 10), st.one_of(client_args, json_like))
def test_install_op_returns_a_typed_op_or_value_error(num: int, shard: int, reply: Any) -> None:
    try:
        op = install_op(num, shard, COURSE_SHARDING, reply)
    except ValueError:
        return
    assert isinstance(op, InstallOp)
    assert present_state().apply(op.to_log())["err"] != "ErrBadOp"


@settings(max_examples=300)
@given(
    st.one_of(
        json_like,
        st.builds(
            lambda name, args: {**args, "op": name},
            st.sampled_from(
                ["get", "put", "append", "delete", "cas", "reconfig", "install", "drop", "dropped_ack"]
            ),
            client_args,
        ),
    )
)
def test_state_machine_apply_never_raises(op: Any) -> None:
    reply = present_state().apply(op)
    assert isinstance(reply, dict) and isinstance(reply["err"], str)
