"""Snapshot/restore and bookkeeping properties of the shardkv core (hypothesis).

A random op sequence (client ops, in- and out-of-order reconfigs, installs for waiting and
other shards, drops, acks, bad ops) is applied to one core; a second core applies the same
sequence with a snapshot, a CBOR round trip and a restore at a random point. Replies and
final state must be identical. Along the way `live_bytes` must equal a recount and the
ownership invariants must hold.
"""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import event, given, settings
from hypothesis import strategies as st
from shardkv_core_helpers import key_in, make_config

from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import SHARD_COUNT, Config

GID = 1
CLIENTS = ("alpha", "beta", "gamma")


@st.composite
def config_chains(draw: st.DrawFn) -> list[Config]:
    """Configs 1..n over groups 1..3, each shard's owner drawn freely."""
    length = draw(st.integers(1, 6))
    owners = st.lists(st.integers(1, 3), min_size=SHARD_COUNT, max_size=SHARD_COUNT)
    return [make_config(num, draw(owners)) for num in range(1, length + 1)]


def draw_op(data: st.DataObject, state: ShardKVState, chain: list[Config]) -> dict[str, Any]:
    kind = data.draw(
        st.sampled_from(
            ["get", "put", "append", "append", "reconfig", "reconfig", "install", "install"]
            + ["drop", "ack", "bad"]
        )
    )
    shard = data.draw(st.integers(0, SHARD_COUNT - 1))
    if kind in ("get", "put", "append"):
        if state.present_shards and data.draw(st.integers(0, 3)) > 0:
            shard = data.draw(st.sampled_from(sorted(state.present_shards)))
        op: dict[str, Any] = {"op": kind, "key": key_in(shard, data.draw(st.sampled_from("xy")))}
        if kind != "get":
            op["value"] = data.draw(st.text("abc", max_size=3))
            op["client"] = data.draw(st.sampled_from(CLIENTS))
            op["seq"] = data.draw(st.integers(0, 6))
        return op
    if kind == "reconfig":
        # Mostly the next config; sometimes any config of the chain.
        if data.draw(st.booleans()) and state.config.num < len(chain):
            return {"op": "reconfig", "config": chain[state.config.num].to_wire()}
        return {"op": "reconfig", "config": data.draw(st.sampled_from(chain)).to_wire()}
    if kind == "install":
        if bool(state.waiting) and data.draw(st.booleans()):
            shard = data.draw(st.sampled_from(sorted(state.waiting)))
            config_num = state.config.num
        else:
            config_num = data.draw(st.integers(0, len(chain)))
        shard_keys = st.text("xyz", min_size=0, max_size=2).map(lambda s: key_in(shard, s))
        return {
            "op": "install",
            "config_num": config_num,
            "shard": shard,
            "data": data.draw(st.dictionaries(shard_keys, st.text("pq", max_size=3), max_size=3)),
            "dedup": data.draw(
                st.dictionaries(st.sampled_from(CLIENTS), st.integers(0, 6), max_size=3)
            ),
        }
    if kind in ("drop", "ack"):
        targets = (
            state.handoff_keys()
            if kind == "drop"
            else [(d.config_num, d.shard) for d in state.pending_drops()]
        )
        if bool(targets) and data.draw(st.booleans()):
            config_num, shard = data.draw(st.sampled_from(targets))
        else:
            config_num = data.draw(st.integers(0, len(chain)))
        return {
            "op": "drop" if kind == "drop" else "dropped_ack",
            "config_num": config_num,
            "shard": shard,
        }
    return data.draw(
        st.sampled_from(
            [
                {"op": "get", "key": 1},
                {"op": "put", "key": "a", "value": "v", "client": "c", "seq": -3},
                {"op": "nope"},
                {"op": "install", "config_num": 0, "shard": 0, "data": {"e": "v"}, "dedup": {}},
            ]
        )
    )


def check_invariants(state: ShardKVState) -> None:
    owned = state.config.shards_of(state.gid)
    assert state.present_shards | state.waiting == owned
    assert not state.present_shards & state.waiting
    assert state.live_bytes() == state.recount_live_bytes()
    for config_num, _ in state.handoff_keys():
        assert config_num < state.config.num


@settings(max_examples=100, deadline=None)
@given(config_chains(), st.integers(0, 40), st.data())
def test_restore_mid_sequence_gives_same_replies_and_state(
    chain: list[Config], op_count: int, data: st.DataObject
) -> None:
    straight = ShardKVState(GID)
    ops: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    for _ in range(op_count):
        op = draw_op(data, straight, chain)
        ops.append(op)
        replies.append(straight.apply(op))
        event(f"{op.get('op')} -> {replies[-1]['err']}")
        check_invariants(straight)

    cut = data.draw(st.integers(0, op_count))
    resumed = ShardKVState(GID)
    replies_resumed = [resumed.apply(op) for op in ops[:cut]]
    resumed = ShardKVState.restore(cbor2.loads(cbor2.dumps(resumed.snapshot())))
    replies_resumed += [resumed.apply(op) for op in ops[cut:]]

    assert replies_resumed == replies
    assert resumed.snapshot() == straight.snapshot()
    assert resumed.live_bytes() == straight.live_bytes()
    assert resumed.pending_pulls() == straight.pending_pulls()
    assert resumed.pending_drops() == straight.pending_drops()
