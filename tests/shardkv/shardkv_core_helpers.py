"""Helpers shared by the shardkv core tests: configs, keys per shard, op builders.

A plain module (not conftest.py) so tests can import the functions; its name is unique in
the tree because tests are imported by basename.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import SHARD_COUNT, Config


def key_to_shard(key: str) -> int:
    """The shard of a text key under the course layout, which these tests' configs use."""
    return COURSE_SHARDING.shard_of(key.encode("utf-8", "surrogatepass"))


def servers_of(gid: int) -> tuple[str, ...]:
    return (f"g{gid}-0", f"g{gid}-1", f"g{gid}-2")


def make_config(num: int, shards: Sequence[int]) -> Config:
    """Config `num` with the given owners; every owner gets three made-up servers."""
    return Config(num, tuple(shards), {gid: servers_of(gid) for gid in set(shards) if gid})


def key_in(shard: int, suffix: str = "") -> str:
    """A key of `shard` ('d' is code point 100, so 'd' + shard falls in that shard)."""
    key = chr(ord("d") + shard) + suffix
    assert key_to_shard(key) == shard
    return key


def reconfig(state: ShardKVState, config: Config) -> dict[str, Any]:
    return state.apply({"op": "reconfig", "config": config.to_wire()})


def put(state: ShardKVState, key: str, value: str, client: str, seq: int) -> dict[str, Any]:
    op = {"op": "put", "key": key, "value": value, "client": client, "seq": seq}
    return state.apply(op)


def append(state: ShardKVState, key: str, value: str, client: str, seq: int) -> dict[str, Any]:
    op = {"op": "append", "key": key, "value": value, "client": client, "seq": seq}
    return state.apply(op)


def get(state: ShardKVState, key: str) -> dict[str, Any]:
    """The get's reply, its value shown as text (values are bytes in the state)."""
    reply = state.apply({"op": "get", "key": key, "client": "reader", "seq": 0})
    if "value" in reply:
        reply = reply | {"value": reply["value"].decode()}
    return reply


def pull_into(target: ShardKVState, sources: Mapping[int, ShardKVState]) -> int:
    """Install every pending pull of `target` that its source can serve; returns how many."""
    installed = 0
    for pull in target.pending_pulls():
        handoff = sources[pull.gid].handoff(pull.config_num, pull.shard)
        if handoff is None:
            continue
        data, dedup = handoff
        reply = target.apply(
            {
                "op": "install",
                "config_num": target.config.num,
                "shard": pull.shard,
                "data": data,
                "dedup": dedup,
            }
        )
        assert reply == {"err": "OK"}
        installed += 1
    return installed


def all_shards_on(gid: int) -> list[int]:
    return [gid] * SHARD_COUNT
