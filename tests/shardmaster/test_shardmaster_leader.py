"""A replica group with a stable leader, seen from its callers (shardmaster replicas).

Only the leader places ops in the log. A follower answers a request that asks for it
(``redirect``) with ``ErrNotLeader`` naming the leader, and forwards any other to the
leader; a query is a ReadIndex read that adds nothing to the log.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from sm_harness import ShardmasterGroup, shardmasters

from diskv_trio.kvproto import REDIRECT, Code, leader_hint
from diskv_trio.net import RpcRemoteError
from diskv_trio.rsm import ReplicatedStateMachine


async def leader_of(group: ShardmasterGroup) -> int:
    """The index of the replica that leads, once one does."""
    found: list[int] = []
    async with trio.open_nursery() as nursery:

        async def watch(index: int) -> None:
            rsm = group.nodes[index].rsm
            assert rsm is not None
            await rsm.peer.leading.wait_value(True)
            found.append(index)
            nursery.cancel_scope.cancel()

        for index in range(len(group.nodes)):
            nursery.start_soon(watch, index)
    return found[0]


def rsm_of(group: ShardmasterGroup, index: int) -> ReplicatedStateMachine:
    rsm = group.nodes[index].rsm
    assert rsm is not None
    return rsm


async def test_a_follower_names_the_leader_or_forwards(short_tmp: Path) -> None:
    async with shardmasters(short_tmp) as group:
        leader = await leader_of(group)
        follower = (leader + 1) % 3
        address = group.addresses[follower]
        with pytest.raises(RpcRemoteError) as info:
            await group.pool.call(address, "sm.query", {"num": -1, REDIRECT: True}, deadline_s=5)
        assert info.value.code == Code.NOT_LEADER
        assert leader_hint(info.value.message, 3) == leader
        max_before = rsm_of(group, leader).peer.max()
        # Without the flag the follower forwards: the join is applied through the leader.
        reply = await group.pool.call(
            address, "sm.join", {"gid": 7, "servers": ["a"]}, deadline_s=5
        )
        assert reply["err"] == Code.OK
        assert rsm_of(group, leader).peer.max() == max_before + 1
        config = await group.clerk(follower).query(-1)
        assert 7 in config.groups


@pytest.mark.parametrize("lease_s", [None, 0.2])
async def test_queries_are_answered_without_log_entries(
    short_tmp: Path, lease_s: float | None
) -> None:
    async with shardmasters(short_tmp, lease_s=lease_s) as group:
        leader = await leader_of(group)
        clerk = group.clerk()
        await clerk.join(3, ["x"])
        rsm = rsm_of(group, leader)
        log_end = rsm.peer.max()
        for _ in range(20):
            config = await clerk.query(-1)
            assert 3 in config.groups
        assert rsm.peer.max() == log_end  # twenty linearizable reads, no instance


async def test_a_new_leader_takes_over_when_the_leader_stops(short_tmp: Path) -> None:
    async with shardmasters(short_tmp) as group:
        leader = await leader_of(group)
        clerk = group.clerk()
        await clerk.join(5, ["x"])
        group.nodes[leader].faults.deaf = True  # it hears nothing: the others elect anew
        await clerk.join(6, ["y"])
        config = await clerk.query(-1)
        assert {5, 6} <= set(config.groups)
        others = [rsm_of(group, i).peer.leading.value for i in range(3) if i != leader]
        assert any(others)
