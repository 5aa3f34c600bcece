"""Forged Paxos traffic from callers that are not peers, against real server processes.

An attacker talks Paxos to one replica: a `paxos.decide` or `paxos.accept` for the next
instance carrying a put of its own, instance numbers far above `max()`, fences and epoch
notices with huge epochs. An authenticated client or operator gets "forbidden" before any
handler runs; a caller claiming the peer role without the peer key is refused at the hello
("auth") and disconnected. Then legitimate puts fill the instances the forgeries aimed at,
and every replica answers with the legitimate values, never the forged one; every Paxos
peer's max and epoch are as legitimate traffic left them.

Checks on what a real (authenticated) peer may send, e.g. a peer's instance numbers and
epochs, belong to the Paxos tests, not here.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

from diskv_trio.net import Role, RpcPool
from diskv_trio.paxos._ballot import Ballot
from diskv_trio.rsm._entry import LogEntry
from diskv_trio.shardmaster import ShardmasterClerk
from tests.security.harness import CLUSTER_NAME, SharedCluster
from tests.security.raw import open_authenticated, open_raw

pytestmark = pytest.mark.slow

FORGED = "FORGED"
HUGE = 2**62


def forged_entry(key: str, value: str) -> dict[str, Any]:
    """A log entry as a replica would apply it: one put of `value` to `key`."""
    put = {"op": "put", "key": key, "value": value, "client": "intruder", "seq": 1}
    return LogEntry("intruder", 1, (put,)).to_value()


def paxos_request(kind: str, **fields: Any) -> dict[str, Any]:
    return {"k": kind, "src": 1, "done": -1, **fields}


async def paxos_stats(pool: RpcPool, shared: SharedCluster, name: str) -> dict[str, Any]:
    status = await pool.call(shared.address(name), "rsm.status", {}, deadline_s=5.0)
    return status["paxos"]


@pytest.mark.parametrize("role", [Role.CLIENT, Role.OPERATOR])
@pytest.mark.parametrize("kind", ["decide", "accept"])
async def test_a_forged_decision_for_the_next_instance_is_forbidden_and_never_served(
    shared: SharedCluster, role: Role, kind: str
) -> None:
    """Client or operator key, forged decide/accept of a put for `max()+1` at replica 0:
    "forbidden". Legitimate puts to other keys then take that instance, and every replica
    still serves the victim key's legitimate value."""
    key = f"victim-{kind}-{role.value}"
    async with shared.client() as kv:
        await shared.put_acknowledged(kv, key, "legitimate before")
    replica = shared.replicas[0]
    async with shared.pool(Role.OPERATOR) as operator:
        before = await paxos_stats(operator, shared, replica)
    target = before["max"] + 1
    forged = forged_entry(key, FORGED)
    if kind == "decide":
        args = paxos_request("decide", seq=target, value=forged)
    else:
        ballot = Ballot(before["epoch"] + 1_000, 1_000_000, 1).to_wire()
        args = paxos_request("accept", seq=target, ballot=ballot, value=forged)
    async with open_authenticated(shared.address(replica), CLUSTER_NAME, role, shared.key(role)) as raw:
        with trio.fail_after(2):
            reply = await raw.call(f"paxos.{kind}", args)
        assert reply is not None
        assert reply["e"]["code"] == "forbidden", reply
        assert role.value in reply["e"]["message"]
        # A refused call does not cost the connection.
        with trio.fail_after(2):
            still = await raw.call("kv.op", {"op": "get", "key": key})
        assert still is not None and still["r"]["value"] == b"legitimate before", still
    async with shared.client() as kv:
        for n in range(3):  # take the forged instance and a few after it, other keys only
            await shared.put_acknowledged(kv, f"{key}-filler-{n}", "legitimate filler")
    async with shared.pool(Role.OPERATOR) as operator:
        for name in shared.replicas:
            after = await paxos_stats(operator, shared, name)
            assert after["max"] >= target, (name, after)
            assert after["epoch"] == before["epoch"], (name, after)
    await shared.check_unharmed(forged=[(key, FORGED)], marker=f"forged-{kind}")


@pytest.mark.parametrize(
    ("role", "key_role"),
    [
        ("peer", Role.CLIENT),  # the client key proves nothing for the peer role
        ("peer", None),  # no proof at all
        ("peer", "random"),  # a key that is not the cluster's
        ("operator", Role.CLIENT),
        ("client", None),
        ("client", "random"),
    ],
)
@pytest.mark.parametrize("server", ["replica", "shardmaster"])
async def test_a_hello_for_a_role_without_its_key_is_refused(
    shared: SharedCluster, role: str, key_role: Role | str | None, server: str
) -> None:
    """A hello claiming `role` with the wrong key, a stranger's key or no proof: an "auth"
    refusal, then the server closes; the Paxos request sent anyway goes nowhere."""
    if key_role is None:
        key = None
    elif key_role == "random":
        key = os.urandom(32)
    else:
        key = shared.key(Role(key_role))
    name = shared.replicas[0] if server == "replica" else shared.masters[0]
    async with open_raw(shared.address(name)) as raw:
        with trio.fail_after(2):
            reply = await raw.hello(CLUSTER_NAME, role, "shardkv-100-1", key)
        assert reply is not None
        assert reply["code"] == "auth", reply
        assert f"prove it holds this cluster's {role} key" in reply["message"]
        await raw.send({"i": 1, "m": "paxos.decide", "a": paxos_request("decide", seq=0, value={})})
        assert await raw.frames_until_closed(timeout_s=2) == []
    shared.assert_every_server_alive()


@pytest.mark.parametrize("role", [Role.CLIENT, Role.OPERATOR])
async def test_instances_far_above_max_and_epochs_from_non_peers_are_forbidden(
    shared: SharedCluster, role: Role
) -> None:
    """Prepare/accept/decide far above `max()` and fences and epoch notices with huge
    epochs, to a replica and a shardmaster: each "forbidden"; every Paxos peer's max stays
    near the legitimate log and its epoch unchanged."""
    async with shared.pool(Role.OPERATOR) as operator:
        before = {name: await paxos_stats(operator, shared, name) for name in shared.replicas + shared.masters}
    far = max(stats["max"] for stats in before.values()) + 1_000_000
    ballot = Ballot(HUGE, HUGE, 0).to_wire()
    requests = [
        ("paxos.prepare", paxos_request("prepare", seq=far, ballot=ballot)),
        ("paxos.prepare", paxos_request("prepare", seq=HUGE, ballot=ballot)),
        ("paxos.accept", paxos_request("accept", seq=far, ballot=ballot, value=forged_entry("k", FORGED))),
        ("paxos.decide", paxos_request("decide", seq=HUGE, value=forged_entry("k", FORGED))),
        ("paxos.fence", paxos_request("fence", epoch=HUGE, nonce=1)),
        ("paxos.epoch", paxos_request("epoch", epoch=HUGE)),
        ("paxos.done", {"k": "done", "src": 1, "done": HUGE}),
    ]
    for name in (shared.replicas[1], shared.masters[1]):
        async with open_authenticated(shared.address(name), CLUSTER_NAME, role, shared.key(role)) as raw:
            for method, args in requests:
                with trio.fail_after(2):
                    reply = await raw.call(method, args)
                assert reply is not None and reply["e"]["code"] == "forbidden", (name, method, reply)
    async with shared.pool(Role.OPERATOR) as operator:
        for name, earlier in before.items():
            stats = await paxos_stats(operator, shared, name)
            assert stats["max"] < far - 999_000, (name, stats)
            assert stats["epoch"] == earlier["epoch"], (name, stats)
            assert stats["done"] < HUGE, (name, stats)
    await shared.check_unharmed(marker="far-instances")


async def test_a_forged_decision_to_a_shardmaster_never_changes_the_configuration(
    shared: SharedCluster,
) -> None:
    """A client's forged decide of a join (a group of the attacker's addresses) and a move
    to it, at the next instance of a shardmaster: "forbidden"; the configuration the
    legitimate client then queries holds the cluster's own group only."""
    master = shared.masters[0]
    async with shared.pool(Role.OPERATOR) as operator:
        target = (await paxos_stats(operator, shared, master))["max"] + 1
    join = {"op": "join", "gid": 666, "servers": ["unix:/tmp/intruder.sock"]}
    value = LogEntry("intruder", 1, (join, {"op": "move", "shard": 0, "gid": 666})).to_value()
    async with open_authenticated(shared.address(master), CLUSTER_NAME, Role.CLIENT, shared.key(Role.CLIENT)) as raw:
        with trio.fail_after(2):
            reply = await raw.call("paxos.decide", paxos_request("decide", seq=target, value=value))
        assert reply is not None and reply["e"]["code"] == "forbidden", reply
    async with shared.client() as kv:
        with trio.fail_after(30):
            config = await kv.config()  # a ReadIndex read: the leader's state, no log entry
        assert set(config.groups) == {shared.gid}
        assert set(config.shards) == {shared.gid}
    async with shared.pool(Role.OPERATOR) as operator:
        clerk = ShardmasterClerk([shared.address(m) for m in shared.masters], operator)
        with trio.fail_after(30):
            await clerk.move(0, shared.gid)  # a legitimate entry takes the forged instance
            config = await clerk.query(-1)
        assert set(config.groups) == {shared.gid}
        assert set(config.shards) == {shared.gid}
        assert (await paxos_stats(operator, shared, master))["max"] >= target
    await shared.check_unharmed(marker="forged-config")
