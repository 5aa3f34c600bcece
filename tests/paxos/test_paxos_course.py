"""The course's Paxos tests (6.824 Lab 3A, src/paxos/test_test.go), ported one by one.

Same cluster shapes, schedules, timing windows and bounds (spec/lab-tests.md section 2).
Peers run in this process, each with its own journal directory, RpcServer on a Unix socket
and RpcPool. The course's socket tricks map onto the built-in fault injection: "deaf"
(socket removed) is `faults.deaf`, hard-link partitions are `faults.cut`, unreliable is
`faults.unreliable` (10 % of requests dropped, 18 % executed with the reply lost).
`ndecided` fails whenever two peers decided different values.
"""

from __future__ import annotations

import gc
import random
import string
import tracemalloc
from pathlib import Path

import pytest
import trio
from paxos_cluster import PaxosCluster, open_cluster

from diskv_trio.paxos import Fate


def _cluster(n: int, socket_dir: str, tmp_path: Path, **kwargs):
    return open_cluster(n, socket_dir, str(tmp_path), **kwargs)


def _randstring(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(n))


async def test_basic(socket_dir: str, tmp_path: Path) -> None:
    """TestBasic: single proposer, many proposers (same and different values), out of order."""
    async with _cluster(3, socket_dir, tmp_path) as c:
        # "Test: Single proposer ..."
        c.peer(0).start(0, "hello")
        await c.waitn(0, 3)
        # "Test: Many proposers, same value ..."
        for i in range(3):
            c.peer(i).start(1, 77)
        await c.waitn(1, 3)
        # "Test: Many proposers, different values ..."
        for i in range(3):
            c.peer(i).start(2, 100 + i)
        await c.waitn(2, 3)
        # "Test: Out-of-order instances ..."
        c.peer(0).start(7, 700)
        c.peer(0).start(6, 600)
        c.peer(1).start(5, 500)
        await c.waitn(7, 3)
        c.peer(0).start(4, 400)
        c.peer(1).start(3, 300)
        for seq in (6, 5, 4, 3):
            await c.waitn(seq, 3)
        assert c.peer(0).max() == 7, "wrong Max()"


async def test_deaf(socket_dir: str, tmp_path: Path) -> None:
    """TestDeaf: deaf peers learn a decision only by proposing themselves."""
    async with _cluster(5, socket_dir, tmp_path) as c:
        c.peer(0).start(0, "hello")
        await c.waitn(0, 5)
        c.faults[0].deaf = True
        c.faults[4].deaf = True
        c.peer(1).start(1, "goodbye")
        await c.waitmajority(1)
        await trio.sleep(1)
        assert c.ndecided(1) == 3, "a deaf peer heard about a decision"
        c.peer(0).start(1, "xxx")
        await c.waitn(1, 4)
        await trio.sleep(1)
        assert c.ndecided(1) == 4, "a deaf peer heard about a decision"
        c.peer(4).start(1, "yyy")
        await c.waitn(1, 5)


async def test_forget(socket_dir: str, tmp_path: Path) -> None:
    """TestForget: Min() advances only once every peer called Done()."""
    n = 6
    async with _cluster(n, socket_dir, tmp_path) as c:
        for i in range(n):
            assert c.peer(i).min() <= 0, "wrong initial Min()"
        c.peer(0).start(0, "00")
        c.peer(1).start(1, "11")
        c.peer(2).start(2, "22")
        c.peer(0).start(6, "66")
        c.peer(1).start(7, "77")
        await c.waitn(0, n)
        for i in range(n):
            assert c.peer(i).min() == 0, "wrong Min()"
        await c.waitn(1, n)
        for i in range(n):
            assert c.peer(i).min() == 0, "wrong Min() (peer 0 has not called Done)"
        for i in range(n):
            c.peer(i).done(0)
        for i in range(1, n):
            c.peer(i).done(1)
        for i in range(n):
            c.peer(i).start(8 + i, "xx")
        allok = False
        for _ in range(12):
            allok = all(c.peer(i).min() == 1 for i in range(n))
            if allok:
                break
            await trio.sleep(1)
        assert allok, "Min() did not advance after Done()"


@pytest.mark.slow
async def test_many_forget(socket_dir: str, tmp_path: Path) -> None:
    """TestManyForget: starts and Done()s at random, unreliable; Status never breaks."""
    n, maxseq = 3, 20
    rng = random.Random(3)
    async with _cluster(n, socket_dir, tmp_path) as c:
        c.set_unreliable(True)
        stop = trio.Event()

        async def starter() -> None:
            for seq in rng.sample(range(maxseq), maxseq):
                c.peer(rng.randrange(n)).start(seq, rng.randrange(1 << 30))
            await trio.lowlevel.checkpoint()

        async def doner() -> None:
            while not stop.is_set():
                seq = rng.randrange(maxseq)
                i = rng.randrange(n)
                if seq >= c.peer(i).min():
                    fate, _ = c.peer(i).status(seq)
                    if fate is Fate.DECIDED:
                        c.peer(i).done(seq)
                await trio.sleep(0.001)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(starter)
            nursery.start_soon(doner)
            await trio.sleep(5)
            stop.set()
        c.set_unreliable(False)
        await trio.sleep(2)
        checked = 0
        for seq in range(maxseq):
            for i in range(n):
                if seq >= c.peer(i).min():
                    fate, _ = c.peer(i).status(seq)
                    assert fate in (Fate.DECIDED, Fate.PENDING)
                    checked += 1
                else:
                    assert c.peer(i).status(seq)[0] is Fate.FORGOTTEN
        assert any(c.peer(i).min() > 0 for i in range(n)), "nothing was ever forgotten"
        del checked


@pytest.mark.slow
async def test_forget_mem(socket_dir: str, tmp_path: Path) -> None:
    """TestForgetMem: forgetting 10 x 1 MB values at least halves the memory in use
    (tracemalloc in place of Go's MemStats); forgotten instances stay forgotten."""
    n = 3
    rng = random.Random(4)
    tracemalloc.start()
    try:
        async with _cluster(n, socket_dir, tmp_path) as c:
            c.peer(0).start(0, "x")
            await c.waitn(0, n)
            for i in range(1, 11):
                big = "".join(rng.choices(string.ascii_letters, k=1_000_000))
                c.peer(0).start(i, big)
                await c.waitn(i, n)
            del big
            gc.collect()
            m1 = tracemalloc.get_traced_memory()[0]
            for i in range(n):
                c.peer(i).done(10)
            for i in range(n):
                c.peer(i).start(11 + i, "z")
            await trio.sleep(3)
            for i in range(n):
                assert c.peer(i).min() == 11, f"expected Min() 11, got {c.peer(i).min()}"
            gc.collect()
            m2 = tracemalloc.get_traced_memory()[0]
            print(f"traced memory: {m1} bytes before forgetting, {m2} after")
            assert m2 <= m1 / 2, f"memory use did not shrink enough: {m1} -> {m2}"
            again = [_randstring(rng, 20) for _ in range(3)]
            for seq in range(3):
                for i in range(n):
                    assert c.peer(i).status(seq)[0] is Fate.FORGOTTEN
                    c.peer(i).start(seq, again[seq])
            await trio.sleep(1)
            for seq in range(3):
                for i in range(n):
                    fate, value = c.peer(i).status(seq)
                    assert fate is Fate.FORGOTTEN and value != again[seq]
    finally:
        tracemalloc.stop()


async def test_done_max(socket_dir: str, tmp_path: Path) -> None:
    """TestDoneMax: Max() survives forgetting."""
    n = 3
    async with _cluster(n, socket_dir, tmp_path) as c:
        c.peer(0).start(0, "x")
        await c.waitn(0, n)
        for i in range(1, 11):
            c.peer(0).start(i, "y")
            await c.waitn(i, n)
        for i in range(n):
            c.peer(i).done(10)
        for i in range(n):
            c.peer(i).start(10, "z")  # ignored once Min() passed it; propagates Done
        await trio.sleep(2)
        for i in range(n):
            assert c.peer(i).max() == 10, (
                f"Max() did not return the correct result: {c.peer(i).max()}"
            )


async def test_rpc_count(socket_dir: str, tmp_path: Path) -> None:
    """TestRPCCount: <= 45 Paxos RPCs received for 5 serial instances, <= 225 more for 5
    instances started by all 3 peers at once; background traffic in the 2 s windows counts."""
    n = 3
    async with _cluster(n, socket_dir, tmp_path) as c:
        ninst1 = 5
        seq = 0
        for _ in range(ninst1):
            c.peer(0).start(seq, "x")
            await c.waitn(seq, n)
            seq += 1
        await trio.sleep(2)
        total1 = c.rpc_total()
        expected1 = ninst1 * n * n
        print(f"serial: {total1} Paxos RPCs for {ninst1} instances (bound {expected1})")
        assert total1 <= expected1, f"too many RPCs for serial Start()s; {total1} > {expected1}"
        ninst2 = 5
        for i in range(ninst2):
            for j in range(n):
                c.peer(j).start(seq, j + i * 10)
            await c.waitn(seq, n)
            seq += 1
        await trio.sleep(2)
        total2 = c.rpc_total() - total1
        expected2 = ninst2 * n * 15
        print(f"concurrent: {total2} Paxos RPCs for {ninst2} instances (bound {expected2})")
        assert total2 <= expected2, f"too many RPCs for concurrent Start()s; {total2} > {expected2}"


async def _many(c: PaxosCluster, window: int) -> None:
    n = c.n
    ninst = 50
    for i in range(n):
        c.peer(i).start(0, 0)
    with trio.fail_after(120):
        for seq in range(1, ninst):
            # The course polls every 20 ms (ported as is).
            while seq >= window and c.ndecided(seq - window) < n:  # noqa: ASYNC110
                await trio.sleep(0.020)
            for i in range(n):
                c.peer(i).start(seq, seq * 10 + i)
        while not all(c.ndecided(seq) >= n for seq in range(1, ninst)):  # noqa: ASYNC110
            await trio.sleep(0.100)


async def test_many(socket_dir: str, tmp_path: Path) -> None:
    """TestMany: 49 instances, all 3 peers proposing, at most 5 in flight."""
    async with _cluster(3, socket_dir, tmp_path) as c:
        await _many(c, window=5)


@pytest.mark.slow
async def test_many_unreliable(socket_dir: str, tmp_path: Path) -> None:
    """TestManyUnreliable: as TestMany with unreliable RPC and at most 3 in flight."""
    async with _cluster(3, socket_dir, tmp_path) as c:
        c.set_unreliable(True)
        await _many(c, window=3)


async def test_old(socket_dir: str, tmp_path: Path) -> None:
    """TestOld: a peer created later proposes another value and learns the decided one."""
    async with _cluster(5, socket_dir, tmp_path, start=[1, 2, 3]) as c:
        c.peer(1).start(1, 111)
        await c.waitmajority(1)
        await c.start(0)
        c.peer(0).start(1, 222)
        await c.waitn(1, 4)
        assert c.peer(0).status(1) == (Fate.DECIDED, 111)


@pytest.mark.slow
async def test_partition(socket_dir: str, tmp_path: Path) -> None:
    """TestPartition: no decision without a majority; decision in the majority side; all
    agree after healing; a peer switching sides carries decisions over (reliable, unreliable)."""
    n = 5
    async with _cluster(n, socket_dir, tmp_path) as c:
        seq = 0
        # "Test: No decision if partitioned ..."
        c.part([0, 2], [1, 3], [4])
        c.peer(1).start(seq, 111)
        await c.checkmax(seq, 0)
        # "Test: Decision in majority partition ..."
        c.part([0], [1, 2, 3], [4])
        await trio.sleep(2)
        await c.waitmajority(seq)
        # "Test: All agree after full heal ..."
        c.peer(0).start(seq, 1000)
        c.peer(4).start(seq, 1004)
        c.heal()
        await c.waitn(seq, n)
        # "Test: One peer switches partitions ..."
        for _ in range(20):
            seq += 1
            c.part([0, 1, 2], [3, 4])
            c.peer(0).start(seq, seq * 10)
            c.peer(3).start(seq, seq * 10 + 1)
            await c.waitmajority(seq)
            assert c.ndecided(seq) <= 3, "too many decided"
            c.part([0, 1], [2, 3, 4])
            await c.waitn(seq, n)
        # "Test: One peer switches partitions, unreliable ..."
        for _ in range(20):
            seq += 1
            c.set_unreliable(True)
            c.part([0, 1, 2], [3, 4])
            for i in range(n):
                c.peer(i).start(seq, seq * 10 + i)
            await c.waitn(seq, 3)
            assert c.ndecided(seq) <= 3, "too many decided"
            c.part([0, 1], [2, 3, 4])
            c.set_unreliable(False)
            await c.waitn(seq, 5)


@pytest.mark.slow
async def test_lots(socket_dir: str, tmp_path: Path) -> None:
    """TestLots: 20 s of random 3-way partitions, unreliable RPC and many proposers; values
    stay consistent throughout and every started instance reaches a majority after healing."""
    n = 5
    rng = random.Random(5)
    async with _cluster(n, socket_dir, tmp_path) as c:
        c.set_unreliable(True)
        stop = trio.Event()
        started = 0

        async def repartition() -> None:
            while not stop.is_set():
                groups: list[list[int]] = [[], [], []]
                for i in range(n):
                    groups[rng.randrange(3)].append(i)
                c.part(*groups)
                await trio.sleep(rng.randrange(200) / 1000)

        async def proposer() -> None:
            nonlocal started
            while not stop.is_set():
                decided = sum(1 for s in range(started) if c.ndecided(s) == n)
                if started - decided < 10:
                    for i in range(n):
                        c.peer(i).start(started, rng.randrange(10))
                    started += 1
                await trio.sleep(rng.randrange(300) / 1000)

        async def checker() -> None:
            while not stop.is_set():
                for s in range(started):
                    c.ndecided(s)
                await trio.sleep(rng.randrange(300) / 1000)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(repartition)
            nursery.start_soon(proposer)
            nursery.start_soon(checker)
            await trio.sleep(20)
            stop.set()
        c.set_unreliable(False)
        c.heal()
        await trio.sleep(5)
        assert started > 10, "the schedule started too few instances to test anything"
        for s in range(started):
            await c.waitmajority(s)
