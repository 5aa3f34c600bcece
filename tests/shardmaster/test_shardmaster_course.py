"""The shardmaster test suite (TestBasic, TestUnreliable, TestFreshQuery), ported.

Three shardmaster replicas run in the test process over real Unix sockets, each with its
own journal. Clerks either know every replica (`ck`) or exactly one (`cka[i]`), as in the
original. A deaf replica is made with fault injection: it refuses every request, as if its
socket file were removed.
"""

from __future__ import annotations

import random
from pathlib import Path

import trio
from sm_harness import shardmasters

from diskv_trio.shardmaster import SHARD_COUNT, Config, ShardmasterClerk


async def check(ck: ShardmasterClerk, groups: list[int]) -> None:
    """The original `check`: exact group set, every shard on a live group, balanced."""
    c = await ck.query(-1)
    assert len(c.groups) == len(groups), f"wanted {len(groups)} groups, got {len(c.groups)}"
    for g in groups:
        assert g in c.groups, f"missing group {g}"
    if groups:
        for s, g in enumerate(c.shards):
            assert g in c.groups, f"shard {s} -> invalid group {g}"
    counts = {g: 0 for g in c.groups}
    for g in c.shards:
        if g in counts:
            counts[g] += 1
    lowest, highest = 257, 0
    for g in c.groups:
        lowest = min(lowest, counts[g])
        highest = max(highest, counts[g])
    assert highest <= lowest + 1, f"max {highest} too much larger than min {lowest}"


def same_config(a: Config, b: Config) -> None:
    assert a.num == b.num
    assert a.shards == b.shards
    assert dict(a.groups) == dict(b.groups)


async def test_basic(short_tmp: Path) -> None:
    """TestBasic: leave/join, historical queries, move, concurrent leave/join, Min, minimal transfers."""
    async with shardmasters(short_tmp) as sm:
        ck = sm.clerk()
        cka = [sm.clerk(i) for i in range(3)]

        # "Test: Basic leave/join ..."
        cfa: list[Config] = [await ck.query(-1)]
        await check(ck, [])
        gid1, gid2 = 1, 2
        await ck.join(gid1, ["x", "y", "z"])
        await check(ck, [gid1])
        cfa.append(await ck.query(-1))
        await ck.join(gid2, ["a", "b", "c"])
        await check(ck, [gid1, gid2])
        cfa.append(await ck.query(-1))
        await ck.join(gid2, ["a", "b", "c"])
        await check(ck, [gid1, gid2])
        cfa.append(await ck.query(-1))
        cfy = await ck.query(-1)
        assert list(cfy.groups[gid1]) == ["x", "y", "z"], "wrong servers for gid 1"
        assert list(cfy.groups[gid2]) == ["a", "b", "c"], "wrong servers for gid 2"
        await ck.leave(gid1)
        await check(ck, [gid2])
        cfa.append(await ck.query(-1))
        await ck.leave(gid1)
        await check(ck, [gid2])
        cfa.append(await ck.query(-1))

        # "Test: Historical queries ..."
        for old in cfa:
            same_config(await ck.query(old.num), old)

        # "Test: Move ..."
        gid3, gid4 = 503, 504
        await ck.join(gid3, ["3a", "3b", "3c"])
        await ck.join(gid4, ["4a", "4b", "4c"])
        for i in range(SHARD_COUNT):
            cf = await ck.query(-1)
            target = gid3 if i < SHARD_COUNT // 2 else gid4
            await ck.move(i, target)
            if cf.shards[i] != target:
                cf1 = await ck.query(-1)
                assert cf1.num > cf.num, "Move should increase Config.Num"
        cf2 = await ck.query(-1)
        for i in range(SHARD_COUNT):
            want = gid3 if i < SHARD_COUNT // 2 else gid4
            assert cf2.shards[i] == want, f"expected shard {i} on gid {want}, got {cf2.shards[i]}"
        await ck.leave(gid3)
        await ck.leave(gid4)

        # "Test: Concurrent leave/join ..."
        npara = 10
        gids = list(range(1, npara + 1))

        async def join_leave(i: int) -> None:
            gid = gids[i]
            await cka[(i + 0) % 3].join(gid + 1000, ["a"])
            await cka[(i + 0) % 3].join(gid, ["a"])
            await cka[(i + 1) % 3].leave(gid + 1000)

        async with trio.open_nursery() as nursery:
            for i in range(npara):
                nursery.start_soon(join_leave, i)
        await check(ck, gids)

        # "Test: Min advances after joins ..."
        for node in sm.nodes:
            assert node.rsm is not None
            assert node.rsm.peer.min() > 0, "Min did not advance"

        # "Test: Minimal transfers after joins ..."
        c1 = await ck.query(-1)
        for i in range(5):
            await ck.join(npara + 1 + i, ["a", "b", "c"])
        c2 = await ck.query(-1)
        for i in range(1, npara + 1):
            for j in range(SHARD_COUNT):
                if c2.shards[j] == i:
                    assert c1.shards[j] == i, "non-minimal transfer after Join()s"

        # "Test: Minimal transfers after leaves ..."
        for i in range(5):
            await ck.leave(npara + 1 + i)
        c3 = await ck.query(-1)
        for i in range(1, npara + 1):
            for j in range(SHARD_COUNT):
                if c2.shards[j] == i:
                    assert c3.shards[j] == i, "non-minimal transfer after Leave()s"


async def test_unreliable(short_tmp: Path) -> None:
    """TestUnreliable: "Concurrent leave/join, failure ..."; replica 0 goes deaf part-way."""
    async with shardmasters(short_tmp) as sm:
        ck = sm.clerk()
        cka = [sm.clerk(i) for i in range(3)]
        npara = 20
        gids = list(range(1, npara + 1))

        async def join_leave(i: int) -> None:
            gid = gids[i]
            await cka[1 + random.randrange(2)].join(gid + 1000, ["a"])
            await cka[1 + random.randrange(2)].join(gid, ["a"])
            await cka[1 + random.randrange(2)].leave(gid + 1000)
            # The original removes replica 0's socket here: nobody can reach it any more.
            sm.nodes[0].faults.deaf = True

        async with trio.open_nursery() as nursery:
            for i in range(npara):
                nursery.start_soon(join_leave, i)
        await check(ck, gids)


async def test_fresh_query(short_tmp: Path) -> None:
    """TestFreshQuery: a replica its peers cannot reach must still answer Query(-1) fresh."""
    async with shardmasters(short_tmp) as sm:
        ck0 = sm.clerk(0)
        ck1 = sm.clerk(1)
        # The original renames replica 0's socket: its peers cannot reach it, but ck0 can,
        # and replica 0 itself can still call its peers.
        peer_ids = [sm.nodes[i].settings.node_id for i in (1, 2)]
        sm.nodes[0].faults.deaf_to = set(peer_ids)
        await ck1.join(1001, ["a", "b", "c"])
        c = await ck0.query(-1)
        assert 1001 in c.groups, "Query(-1) produced a stale configuration"
