"""Several shardkv groups and a shardmaster, driven step by step against a plain dict.

One seeded random stream picks each step: a shardmaster Join / Leave / Move; a group
advancing to its next config, pulling waiting shards from their old owners' handoffs, or
sending drops (and acks) for installed shards; a client sending its current put/append to
the owner it believes in (with a chance that the reply is lost, so the client resends the
same op later, possibly to another group); a client get checked against the model. This is
how the servers drive the cores, minus the network: it checks that values are never lost or
applied twice across shard moves (TestConcurrent / TestConcurrentUnreliable on the cores),
and that once everything settles each shard lives in exactly one group and every handoff
has been dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from shardkv_core_helpers import key_to_shard, pull_into

from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import SHARD_COUNT, ShardmasterState

GIDS = (100, 101, 102)
KEYS = [str(n) for n in range(11)]  # the course's TestConcurrent keys "0".."10"


@dataclass
class Client:
    name: str
    seq: int = 0
    pending: dict[str, Any] | None = None
    known_config_num: int = 0


@dataclass
class Cluster:
    rng: random.Random
    master: ShardmasterState = field(default_factory=ShardmasterState)
    groups: dict[int, ShardKVState] = field(
        default_factory=lambda: {gid: ShardKVState(gid) for gid in GIDS}
    )
    model: dict[str, str] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # client -> highest seq applied

    def master_step(self) -> None:
        joined = sorted(self.master.latest.groups)
        kind = self.rng.choice(["join", "leave", "move"])
        gid = self.rng.choice(GIDS)
        if kind == "join":
            self.master.apply({"op": "join", "gid": gid, "servers": [f"s{gid}"]})
        elif kind == "leave" and len(joined) > 1:
            # Never the last group: a config with no groups would drop all data, as in the course.
            self.master.apply({"op": "leave", "gid": gid})
        elif kind == "move" and joined:
            shard = self.rng.randrange(SHARD_COUNT)
            self.master.apply({"op": "move", "shard": shard, "gid": self.rng.choice(joined)})

    def advance(self, group: ShardKVState) -> bool:
        if group.waiting or group.config.num >= self.master.latest.num:
            return False
        config = self.master.query(group.config.num + 1)
        assert group.apply({"op": "reconfig", "config": config.to_wire()}) == {"err": "OK"}
        return True

    def drops(self, group: ShardKVState) -> bool:
        progressed = False
        for drop in group.pending_drops():
            old = self.groups[drop.gid]
            assert (
                old.apply({"op": "drop", "config_num": drop.config_num, "shard": drop.shard})["err"]
                == "OK"
            )
            ack = {"op": "dropped_ack", "config_num": drop.config_num, "shard": drop.shard}
            assert group.apply(ack) == {"err": "OK"}
            progressed = True
        return progressed

    def group_step(self) -> None:
        group = self.groups[self.rng.choice(GIDS)]
        action = self.rng.choice(["advance", "pull", "drops"])
        if action == "advance":
            self.advance(group)
        elif action == "pull":
            pull_into(group, self.groups)
        else:
            self.drops(group)

    def send(self, client: Client) -> None:
        if client.pending is None:
            client.seq += 1
            kind = self.rng.choice(["put", "append", "append"])
            key = self.rng.choice(KEYS)
            value = f"<{client.name}.{client.seq}>"
            client.pending = {
                "op": kind,
                "key": key,
                "value": value,
                "client": client.name,
                "seq": client.seq,
            }
        if self.rng.random() < 0.3:
            client.known_config_num = self.master.latest.num
        owner = self.master.query(client.known_config_num).shards[
            key_to_shard(client.pending["key"])
        ]
        if owner == 0:
            return
        reply = self.groups[owner].apply(client.pending)
        if reply["err"] != "OK":
            assert reply["err"] == "ErrWrongGroup"
            client.known_config_num = self.master.latest.num
            return
        op = client.pending
        if self.applied.get(client.name, 0) < op["seq"]:
            self.applied[client.name] = op["seq"]
            old = self.model.get(op["key"], "")
            self.model[op["key"]] = op["value"] if op["op"] == "put" else old + op["value"]
        if self.rng.random() < 0.25:
            return  # reply lost: the client will send the same op again
        client.pending = None

    def check_get(self, key: str) -> bool:
        owner = self.master.latest.shards[key_to_shard(key)]
        if owner == 0:
            return False
        reply = self.groups[owner].apply({"op": "get", "key": key})
        if "value" in reply:
            reply = reply | {"value": reply["value"].decode()}
        if reply["err"] == "ErrWrongGroup":
            return False
        want = self.model.get(key)
        assert reply == ({"err": "ErrNoKey"} if want is None else {"err": "OK", "value": want}), key
        return True

    def settle(self) -> None:
        """Run reconfigs, pulls and drops until nothing changes."""
        for _ in range(1000):
            progressed = False
            for group in self.groups.values():
                progressed |= pull_into(group, self.groups) > 0
                progressed |= self.advance(group)
                progressed |= self.drops(group)
            if not progressed:
                return
        raise AssertionError("transfers did not settle")


def run(seed: int, steps: int) -> Cluster:
    rng = random.Random(seed)
    cluster = Cluster(rng)
    cluster.master.apply({"op": "join", "gid": GIDS[0], "servers": ["s"]})
    clients = [Client(f"c{i}") for i in range(5)]
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.05:
            cluster.master_step()
        elif roll < 0.45:
            cluster.group_step()
        elif roll < 0.9:
            cluster.send(rng.choice(clients))
        else:
            cluster.check_get(rng.choice(KEYS))
    cluster.settle()
    for client in clients:  # finish every resend so the model is final
        while client.pending is not None:
            client.known_config_num = cluster.master.latest.num
            cluster.send(client)
    return cluster


@pytest.mark.parametrize("seed", range(30))
def test_values_survive_moves_exactly_once(seed: int) -> None:
    cluster = run(seed, steps=600)
    latest = cluster.master.latest
    for key in KEYS:
        assert cluster.check_get(key)
    assert cluster.model, "the run applied some ops"
    for shard in range(SHARD_COUNT):
        holders = [g for g in cluster.groups.values() if shard in g.present_shards]
        assert [g.gid for g in holders] == [latest.shards[shard]]
    for group in cluster.groups.values():
        assert group.config == latest
        assert group.waiting == frozenset()
        assert group.handoff_keys() == []
        assert group.pending_drops() == []


def test_simulation_moves_shards_between_groups() -> None:
    """The scenario above is not vacuous: shards do travel and the configs do change."""
    cluster = run(seed=7, steps=600)
    assert cluster.master.latest.num >= 5
    owners = {cluster.master.query(n).shards[s] for n in range(1, 6) for s in range(SHARD_COUNT)}
    assert len(owners) >= 2
