"""The shardkv suite (TestBasic, TestMove, TestLimp, TestConcurrent, TestConcurrentUnreliable)
and its "(lab4)" copies from the persistence suite, ported.

Each runs 3 shardmasters and 3 groups (gids 100-102) of 3 replicas, every replica its own
process. The two variants differ where the originals do: the shardkv suite stops a server
with `kill()` (here SIGTERM, a clean stop), the "(lab4)" copies with SIGKILL. "Removing the
socket files" of a group is done with fault injection (`deaf`): the servers keep running but
nobody can reach them.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from course_harness import Course, setup

from diskv_trio.client import Client
from diskv_trio.shardmaster import SHARD_COUNT

VARIANTS = ["shardkv", "lab4"]


async def stop_server(tc: Course, variant: str, gi: int, si: int) -> None:
    """The original's kill: a clean stop in the shardkv suite, SIGKILL in the lab4 copies."""
    if variant == "lab4":
        await tc.kill1(gi, si)
    else:
        await tc.cluster.terminate(tc.server(gi, si))


async def check_and_rewrite(ck: Client, keys: list[str], vals: list[str]) -> None:
    """Every key still has its latest value; then give each a new one (the original's loop)."""
    for i, k in enumerate(keys):
        v = await ck.get(k)
        assert v == vals[i], f"Get({k}) wrong value: {v!r} != {vals[i]!r}"
        vals[i] = str(random.randrange(2**62))
        await ck.put(k, vals[i])


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
async def test_basic(short_tmp: Path, variant: str) -> None:
    """"Test: Basic Join/Leave ...": values survive every join and leave."""
    async with setup(short_tmp, groups=3, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        await ck.put("a", "x")
        await ck.append("a", "b")
        assert await ck.get("a") == "xb", "Get got wrong value"

        keys = [str(random.randrange(2**62)) for _ in range(10)]
        vals = [str(random.randrange(2**62)) for _ in range(10)]
        for k, v in zip(keys, vals, strict=True):
            await ck.put(k, v)

        for g in range(1, len(tc.gids)):
            await tc.join(g)
            await trio.sleep(1)
            await check_and_rewrite(ck, keys, vals)
        for g in range(len(tc.gids) - 1):
            await tc.leave(g)
            await trio.sleep(1)
            await check_and_rewrite(ck, keys, vals)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
async def test_move(short_tmp: Path, variant: str) -> None:
    """"Test: Shards really move ...": with group 0 unreachable, only group 1's 4-5 shards answer."""
    async with setup(short_tmp, groups=3, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        for i in range(SHARD_COUNT):
            await ck.put(str(i), str(i))
        await tc.join(1)
        await trio.sleep(5)
        for i in range(SHARD_COUNT):
            assert await ck.get(str(i)) == str(i), "Get got wrong value"

        for name in tc.cluster.group_servers(tc.gids[0]):
            await tc.cluster.set_faults(name, deaf=True)

        count = 0
        clerks = [await tc.clerk() for _ in range(SHARD_COUNT)]
        async with trio.open_nursery() as nursery:

            async def get_one(me: int) -> None:
                nonlocal count
                v = await clerks[me].get(str(me))
                assert v == str(me), f"Get({me}) got wrong value {v!r}"
                count += 1

            for i in range(SHARD_COUNT):
                nursery.start_soon(get_one, i)
            await trio.sleep(10)
            nursery.cancel_scope.cancel()

        third = SHARD_COUNT // 3
        assert third < count < 2 * third, f"{count} keys worked after killing 1/2 of groups; wanted {third + 1}"


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
async def test_limp(short_tmp: Path, variant: str) -> None:
    """"Test: Reconfiguration with some dead replicas ...": one replica of each group dead."""
    async with setup(short_tmp, groups=3, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        await ck.put("a", "b")
        assert await ck.get("a") == "b", "Get got wrong value"

        for gi in range(len(tc.gids)):
            await stop_server(tc, variant, gi, random.randrange(3))

        keys = [str(random.randrange(2**62)) for _ in range(10)]
        vals = [str(random.randrange(2**62)) for _ in range(10)]
        for k, v in zip(keys, vals, strict=True):
            await ck.put(k, v)

        for g in range(1, len(tc.gids)):
            await tc.join(g)
            await trio.sleep(1)
            await check_and_rewrite(ck, keys, vals)
        for g in range(len(tc.gids) - 1):
            await tc.leave(g)
            await trio.sleep(2)
            for si in range(3):
                await stop_server(tc, variant, g, si)
            await check_and_rewrite(ck, keys, vals)


async def do_concurrent(short_tmp: Path, unreliable: bool) -> None:
    async with setup(short_tmp, groups=3, replicas=3, unreliable=unreliable) as tc:
        for gi in range(len(tc.gids)):
            await tc.join(gi)
        npara = 11

        async def client(me: int) -> None:
            async with tc.connect() as ck:
                mck = ck.shardmasters
                key = str(me)
                last = ""
                for _ in range(3):
                    nv = str(random.randrange(2**62))
                    await ck.append(key, nv)
                    last += nv
                    v = await ck.get(key)
                    assert v == last, f"Get({key}) expected {last} got {v}"
                    gi = random.randrange(len(tc.gids))
                    await mck.move(random.randrange(SHARD_COUNT), tc.gids[gi])
                    await trio.sleep(random.randrange(30) / 1000)

        async with trio.open_nursery() as nursery:
            for i in range(npara):
                nursery.start_soon(client, i)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
async def test_concurrent(short_tmp: Path, variant: str) -> None:
    """"Test: Concurrent Put/Get/Move ...": no lost or duplicated appends across moves."""
    await do_concurrent(short_tmp, unreliable=False)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
async def test_concurrent_unreliable(short_tmp: Path, variant: str) -> None:
    """"Test: Concurrent Put/Get/Move (unreliable) ...": at-most-once across retries and moves."""
    await do_concurrent(short_tmp, unreliable=True)

