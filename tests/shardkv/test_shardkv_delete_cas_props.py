"""Delete and compare-and-set in the shardkv state machine, against a dict, with retries,
shard moves and snapshot/restore in between (hypothesis).

Two groups (gids 1 and 2) apply a random program: client writes (put, append, delete, cas)
on a few keys in different shards, each sometimes retried later with the same session
number; shard moves (both groups reconfigure, the gaining one installs what it pulled, with
the duplicate table); and snapshot/restore of both groups through CBOR. Every first reply
must match the model (a dict of bytes; absent is "no entry"), every retry must get the first
reply again and change nothing, and gets must read the model.
"""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st
from shardkv_core_helpers import key_to_shard, make_config, pull_into, reconfig

from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import SHARD_COUNT

KEYS = ["a", "b", "c", "d"]  # four different shards of the course layout
VALUES = [b"", b"x", b"y", b"xy"]

write = st.tuples(
    st.just("write"),
    st.integers(0, 2),  # client
    st.sampled_from(["put", "append", "delete", "cas", "cas"]),
    st.sampled_from(KEYS),
    st.sampled_from(VALUES),
    st.one_of(st.none(), st.sampled_from(VALUES)),  # cas expected
    st.integers(0, 3),  # retry after this many more program steps (0: no retry)
)
program = st.lists(
    st.one_of(write, st.tuples(st.just("move")), st.tuples(st.just("snapshot")), st.tuples(st.just("get"), st.sampled_from(KEYS))),
    max_size=40,
)


class Cluster:
    def __init__(self) -> None:
        self.groups = {1: ShardKVState(1), 2: ShardKVState(2)}
        self.num = 1
        self.owners = [1] * SHARD_COUNT
        for state in self.groups.values():
            assert reconfig(state, make_config(1, self.owners))["err"] == "OK"

    def owner(self, key: str) -> ShardKVState:
        return self.groups[self.owners[key_to_shard(key)]]

    def move(self) -> None:
        self.num += 1
        self.owners = [3 - gid if shard % 2 == self.num % 2 else gid for shard, gid in enumerate(self.owners)]
        for state in self.groups.values():
            assert reconfig(state, make_config(self.num, self.owners))["err"] == "OK"
        for gid, state in self.groups.items():
            pull_into(state, {3 - gid: self.groups[3 - gid]})
        assert all(not state.waiting for state in self.groups.values())

    def snapshot_restore(self) -> None:
        for gid, state in self.groups.items():
            self.groups[gid] = ShardKVState.restore(cbor2.loads(cbor2.dumps(state.snapshot())))


def model_apply(model: dict[str, bytes], kind: str, key: str, value: bytes, expected: bytes | None) -> dict[str, Any]:
    old = model.get(key)
    if kind == "put":
        model[key] = value
        return {"err": "OK"}
    if kind == "append":
        model[key] = (old or b"") + value
        return {"err": "OK"}
    if kind == "delete":
        model.pop(key, None)
        return {"err": "OK", "existed": old is not None}
    written = old == expected
    if written:
        model[key] = value
    return {"err": "OK", "written": written}


@settings(max_examples=300, deadline=None)
@given(program)
def test_delete_and_cas_apply_once_across_moves_and_restores(steps: list[tuple[Any, ...]]) -> None:
    cluster = Cluster()
    model: dict[str, bytes] = {}
    seqs = [0, 0, 0]
    pending: list[tuple[int, dict[str, Any], dict[str, Any]]] = []  # (due step, op, first reply)
    for index, step in enumerate(steps):
        if step[0] == "write":
            _, client, kind, key, value, expected, retry_after = step
            seqs[client] += 1
            op: dict[str, Any] = {"op": kind, "key": key, "client": f"c{client}", "seq": seqs[client]}
            if kind in ("put", "append"):
                op["value"] = value
            elif kind == "cas":
                op |= {"expected": expected, "new": value}
            reply = cluster.owner(key).apply(op)
            assert reply == model_apply(model, kind, key, value, expected), (op, reply)
            if retry_after:
                pending.append((index + retry_after, op, reply))
        elif step[0] == "move":
            cluster.move()
        elif step[0] == "snapshot":
            cluster.snapshot_restore()
        else:
            reply = cluster.owner(step[1]).apply({"op": "get", "key": step[1]})
            want = model.get(step[1])
            assert reply == ({"err": "ErrNoKey"} if want is None else {"err": "OK", "value": want})
        for due, op, first in [item for item in pending if item[0] <= index]:
            pending.remove((due, op, first))
            client = int(op["client"][1:])
            again = cluster.owner(op["key"]).apply(op)
            if op["seq"] == seqs[client]:
                assert again == first, (op, first, again)  # the same answer, not applied again
            else:
                assert again["err"] in ("OK", "ErrStale")  # superseded: nobody waits for it
    for key in KEYS:
        reply = cluster.owner(key).apply({"op": "get", "key": key})
        assert reply.get("value") == model.get(key)
    for state in cluster.groups.values():
        assert state.live_bytes() == state.recount_live_bytes()
