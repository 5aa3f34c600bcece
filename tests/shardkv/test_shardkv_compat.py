"""Data written by the previous version (0.1: text values, put/append, 10 shards by first
character) is read correctly, and a snapshot of an unknown version is refused, naming it.

The previous version's snapshot and log ops are written out by hand in its exact format
(configs without a sharding field, text keys and values, bare sequence numbers).
"""

from __future__ import annotations

import pytest
from shardkv_core_helpers import key_to_shard

from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import ShardmasterState

OLD_CONFIG_1 = {"num": 1, "shards": [1] * 10, "groups": {1: ["a"]}}
OLD_CONFIG_0 = {"num": 0, "shards": [0] * 10, "groups": {}}


def old_snapshot() -> dict[str, object]:
    shard = key_to_shard("héllo")
    return {
        "version": 1,
        "gid": 1,
        "config": OLD_CONFIG_1,
        "previous_config": OLD_CONFIG_0,
        "shards": [[s, {"héllo": "wörld"} if s == shard else {}, {"c": 3} if s == shard else {}]
                   for s in range(10)],
        "waiting": [],
        "handoffs": [],
        "drops": [],
    }


def test_previous_version_snapshot_reads_as_utf8_bytes_with_its_duplicate_table() -> None:
    state = ShardKVState.restore(old_snapshot())
    assert state.config.sharding == COURSE_SHARDING
    assert state.apply({"op": "get", "key": "héllo"}) == {"err": "OK", "value": "wörld".encode()}
    retry = {"op": "append", "key": "héllo", "value": "!", "client": "c", "seq": 3}
    assert state.apply(retry) == {"err": "OK"}  # applied before the upgrade: not again
    assert state.apply({"op": "get", "key": "héllo"})["value"] == "wörld".encode()
    assert state.apply(retry | {"seq": 4})["err"] == "OK"
    assert state.apply({"op": "get", "key": b"h\xc3\xa9llo"})["value"] == "wörld!".encode()
    again = ShardKVState.restore(state.snapshot())  # and it is written back as version 2
    assert again.snapshot() == state.snapshot()
    assert state.snapshot()["version"] == 2


def test_previous_version_log_ops_apply_as_they_did() -> None:
    state = ShardKVState(1)
    assert state.apply({"op": "reconfig", "config": OLD_CONFIG_1})["err"] == "OK"
    assert state.apply({"op": "put", "key": "k", "value": "v", "client": "c", "seq": 1}) == {"err": "OK"}
    assert state.apply({"op": "append", "key": "k", "value": "w", "client": "c", "seq": 2}) == {"err": "OK"}
    assert state.apply({"op": "get", "key": "k"}) == {"err": "OK", "value": b"vw"}


def test_snapshot_of_an_unknown_version_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="version 3 is not one this version reads"):
        ShardKVState.restore(old_snapshot() | {"version": 3})


def test_previous_version_shardmaster_state_keeps_the_course_layout() -> None:
    state = ShardmasterState.restore({"version": 1, "configs": [OLD_CONFIG_0, OLD_CONFIG_1]})
    assert state.latest.sharding == COURSE_SHARDING
    old_join = {"op": "join", "gid": 2, "servers": ["b"]}  # as 0.1 logged it
    assert state.apply(old_join)["err"] == "OK"
    assert state.latest.sharding == COURSE_SHARDING and set(state.latest.shards) == {1, 2}
    new_join = old_join | {"gid": 3, "sharding": {"count": 120, "scheme": "crc32c"}}
    reply = state.apply(new_join)  # a shardmaster started with another setting
    assert reply["err"] == "ErrBadOp" and "10 shards by first-char" in reply["message"]


def test_first_join_fixes_the_sharding() -> None:
    state = ShardmasterState()
    join = {"op": "join", "gid": 1, "servers": ["a"], "sharding": {"count": 120, "scheme": "crc32c"}}
    assert state.apply(join)["err"] == "OK"
    assert state.query(0).sharding == state.latest.sharding
    assert len(state.query(0).shards) == len(state.latest.shards) == 120
