"""The persistence suite (Test5...), ported: real server processes killed with SIGKILL at
random moments, disks lost by emptying directories, unreliable mode, and the original
timing windows and bounds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from course_harness import Course, randstring, setup

pytestmark = pytest.mark.slow


def check_appends(v: str, counts: list[int]) -> None:
    """The original checkAppends: each client's elements once each, in order."""
    for i, count in enumerate(counts):
        last = -1
        for j in range(count):
            wanted = f"x {i} {j} y"
            off = v.find(wanted)
            assert off >= 0, f"missing element {wanted!r} in Append result"
            assert v.rfind(wanted) == off, f"duplicate element {wanted!r} in Append result"
            assert off > last, f"wrong order for element {wanted!r} in Append result"
            last = off


async def preload(tc: Course, ck, k1: str, k2: str | None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """7-13 rounds of Append(k1) and Put(k2), then the original's two checking Gets."""
    k1v, k2v = "", ""
    for _ in range(7 + random.randrange(7)):
        x = randstring(10)
        await ck.append(k1, x)
        k1v += x
        if k2 is not None:
            k2v = randstring(10)
            await ck.put(k2, k2v)
    await trio.sleep(0.3)
    assert await ck.get(k1) == k1v, "wrong value"
    await trio.sleep(0.3)
    if k2 is not None:
        assert await ck.get(k2) == k2v, "wrong value"
    return k1v, k2v


async def assert_get_blocks(nursery: trio.Nursery, tc: Course, key: str, seconds: float, message: str) -> None:
    """Start a Get with a new clerk in `nursery`; fail if it returns within `seconds`.

    The original leaks the goroutine; here it runs until the caller cancels `nursery`.
    """
    returned = trio.Event()

    async def get() -> None:
        async with tc.connect() as ck1:
            await ck1.get(key)
            returned.set()

    nursery.start_soon(get)
    with trio.move_on_after(seconds):
        await returned.wait()
    assert not returned.is_set(), message


async def test_basic_persistence(short_tmp: Path) -> None:
    """Test5BasicPersistence: all replicas killed; state comes back from disk alone."""
    async with setup(short_tmp, groups=1, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        await ck.append("a", "x")
        await ck.append("a", "y")
        assert await ck.get("a") == "xy", "wrong value"
        for i in range(3):
            await tc.kill1(0, i)
        async with trio.open_nursery() as nursery:
            await assert_get_blocks(
                nursery, tc, "a", 3, "Get should not have succeeded after killing all servers."
            )
            for i in range(3):
                await tc.start1(0, i)
            await trio.sleep(2)
            await ck.append("a", "z")
            assert await ck.get("a") == "xyz", "wrong value"
            nursery.cancel_scope.cancel()


async def test_one_restart(short_tmp: Path) -> None:
    """Test5OneRestart: each replica in turn killed and restarted with its disk."""
    async with setup(short_tmp, groups=1, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1, k2 = randstring(10), randstring(10)
        k1v = randstring(10)
        await ck.append(k1, k1v)
        k2v = randstring(10)
        await ck.put(k2, k2v)
        for i in range(3):
            assert await ck.get(k1) == k1v, "wrong value"
            assert await ck.get(k2) == k2v, "wrong value"
            await tc.kill1(0, i)
            await trio.sleep(1)
            z = randstring(10)
            k1v += z
            await ck.append(k1, z)
            k2v = randstring(10)
            await ck.put(k2, k2v)
            await tc.start1(0, i)
            await trio.sleep(2)
        assert await ck.get(k1) == k1v, "wrong value"
        assert await ck.get(k2) == k2v, "wrong value"


async def disk_use(short_tmp: Path, append_size: int) -> None:
    async with setup(short_tmp, groups=1, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1, k2, k3, k4 = (randstring(10) for _ in range(4))
        k1v = randstring(10)
        await ck.append(k1, k1v)
        k2v = randstring(10)
        await ck.put(k2, k2v)
        k3v = randstring(10)
        await ck.put(k3, k3v)
        k4v = randstring(10)
        await ck.append(k4, k4v)

        n = 100 + random.randrange(20)
        for _ in range(n):
            k2v = randstring(1000)
            await ck.put(k2, k2v)
            x = randstring(append_size)
            await ck.append(k3, x)
            k3v += x
            await ck.get(k4)
        await trio.sleep(0.1)
        k2v = randstring(1000)
        await ck.put(k2, k2v)
        await trio.sleep(0.1)
        x = randstring(1)
        await ck.append(k3, x)
        k3v += x
        await trio.sleep(0.1)
        await ck.get(k4)

        await trio.sleep(2.1)  # "let all the replicas tick()"
        limit = 20_000 if append_size == 1 else 3 * n * 1000 + 20_000

        def check_space(when: str) -> None:
            used = tc.space()
            assert used <= limit, f"{when}: using too many bytes on disk ({used} > {limit})"

        check_space("after the writes")
        for i in range(3):
            await tc.kill1(0, i)
        check_space("after killing all replicas")
        for i in range(3):
            await tc.start1(0, i)
        await trio.sleep(1)
        if append_size == 1:
            assert await ck.get(k1) == k1v, "wrong value for k1"
            assert await ck.get(k2) == k2v, "wrong value for k2"
            assert await ck.get(k3) == k3v, "wrong value for k3"
        else:
            assert await ck.get(k3) == k3v, "wrong value for k3"
            await trio.sleep(0.1)
            assert await ck.get(k2) == k2v, "wrong value for k2"
            await trio.sleep(1.1)
            assert await ck.get(k1) == k1v, "wrong value for k1"
        check_space("after restarting all replicas")


async def test_disk_use(short_tmp: Path) -> None:
    """Test5DiskUse: three replicas together stay within 20,000 bytes."""
    await disk_use(short_tmp, append_size=1)


async def test_append_use(short_tmp: Path) -> None:
    """Test5AppendUse: appends are stored once: within 3*n*1000 + 20,000 bytes."""
    await disk_use(short_tmp, append_size=1000)


async def lost_disk_rounds(tc: Course, ck, replicas: range, k1: str, k2: str, k1v: str, k2v: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    for i in replicas:
        assert await ck.get(k1) == k1v, "wrong value"
        assert await ck.get(k2) == k2v, "wrong value"
        await tc.kill1(0, i, deletefiles=True)
        await trio.sleep(1)
        z = randstring(10)
        k1v += z
        await ck.append(k1, z)
        k2v = randstring(10)
        await ck.put(k2, k2v)
        await tc.start1(0, i)
        x = randstring(10)
        await ck.append(k1, x)
        k1v += x
        await trio.sleep(0.01)
        y = randstring(10)
        await ck.append(k1, y)
        k1v += y
        await trio.sleep(2)
    return k1v, k2v


async def test_one_lost_disk(short_tmp: Path) -> None:
    """Test5OneLostDisk: each replica in turn loses its disk; it must vote again in ~2 s."""
    async with setup(short_tmp, groups=1, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1, k2 = randstring(10), randstring(10)
        k1v, k2v = await preload(tc, ck, k1, k2)
        k1v, k2v = await lost_disk_rounds(tc, ck, range(3), k1, k2, k1v, k2v)
        assert await ck.get(k1) == k1v, "wrong value"
        assert await ck.get(k2) == k2v, "wrong value"


async def test_one_lost_one_down(short_tmp: Path) -> None:
    """Test5OneLostOneDown: 5 replicas, one down throughout, the others lose disks in turn."""
    async with setup(short_tmp, groups=1, replicas=5) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1, k2 = randstring(10), randstring(10)
        k1v, k2v = await preload(tc, ck, k1, k2)
        await tc.kill1(0, 0)
        k1v, k2v = await lost_disk_rounds(tc, ck, range(1, 5), k1, k2, k1v, k2v)
        assert await ck.get(k1) == k1v, "wrong value"
        assert await ck.get(k2) == k2v, "wrong value"
        await tc.start1(0, 0)
        await ck.put("a", "b")
        await trio.sleep(1)
        await ck.put("a", "c")
        assert await ck.get(k1) == k1v, "wrong value"
        assert await ck.get(k2) == k2v, "wrong value"


async def test_concurrent_crash_reliable(short_tmp: Path) -> None:
    """Test5ConcurrentCrashReliable: 5 appending clients while replicas crash, then lose disks."""
    async with setup(short_tmp, groups=1, replicas=3) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1 = randstring(10)
        await ck.put(k1, "")
        stop = False
        counts = [0] * 5

        async def client(me: int) -> None:
            async with tc.connect() as ck1:
                n = 0
                while not stop or n < 5:
                    await ck1.append(k1, f"x {me} {n} y")
                    n += 1
                    await trio.sleep(0.2)
                counts[me] = n

        async with trio.open_nursery() as nursery:
            for me in range(5):
                nursery.start_soon(client, me)
            for lose in (False, True):
                for i in range(3):
                    await tc.kill1(0, i, deletefiles=lose)
                    await trio.sleep(1)
                    await ck.get(k1)
                    await tc.start1(0, i)
                    await trio.sleep(3)
                    await ck.get(k1)
            await trio.sleep(2)
            stop = True

        vx = await ck.get(k1)
        check_appends(vx, counts)
        for i in range(3):
            await tc.kill1(0, i)
            assert await ck.get(k1) == vx, "mismatch"
            await tc.start1(0, i)
            assert await ck.get(k1) == vx, "mismatch"
            await trio.sleep(3)
            assert await ck.get(k1) == vx, "mismatch"


async def test_simultaneous(short_tmp: Path) -> None:
    """Test5Simultaneous: kills 0-199 ms into an Append, half with disk loss, unreliable."""
    async with setup(short_tmp, groups=1, replicas=3, unreliable=True) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1 = randstring(10)
        await ck.put(k1, "")
        for i in range(50):
            finished = trio.Event()
            ck1 = await tc.clerk()
            async with trio.open_nursery() as nursery:

                async def append(n: int = i, clerk=ck1, done: trio.Event = finished) -> None:  # type: ignore[no-untyped-def]
                    await clerk.append(k1, f"x 0 {n} y")
                    done.set()

                nursery.start_soon(append)
                await trio.sleep(random.randrange(200) / 1000)
                await tc.kill1(0, i % 3, deletefiles=random.randrange(1000) < 500)
                await trio.sleep(1)
                vx = await ck.get(k1)
                check_appends(vx, [i])
                await tc.start1(0, i % 3)
                await trio.sleep(2.2)
                # The original's blocking receive: wait for the Append to return.
                await finished.wait()


async def test_rejoin_mix1(short_tmp: Path) -> None:
    """Test5RejoinMix1: no progress with {stale R0, empty R1, empty R2}; progress with all 5."""
    async with setup(short_tmp, groups=1, replicas=5) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1 = randstring(10)
        k1v, _ = await preload(tc, ck, k1, None)
        await tc.kill1(0, 0)
        for _ in range(2):
            x = randstring(10)
            await ck.append(k1, x)
            k1v += x
        await trio.sleep(0.3)
        assert await ck.get(k1) == k1v, "wrong value"
        await trio.sleep(0.3)
        await tc.kill1(0, 1, deletefiles=True)
        await tc.kill1(0, 2, deletefiles=True)
        await tc.kill1(0, 3)
        await tc.kill1(0, 4)
        for i in (0, 1, 2):
            await tc.start1(0, i)
        await trio.sleep(0.3)
        async with trio.open_nursery() as nursery:
            await assert_get_blocks(nursery, tc, k1, 3, "Get should not have succeeded.")
            await tc.start1(0, 3)
            await tc.start1(0, 4)
            x = randstring(10)
            await ck.append(k1, x)
            k1v += x
            assert await ck.get(k1) == k1v, "wrong value"
            nursery.cancel_scope.cancel()


async def test_rejoin_mix3(short_tmp: Path) -> None:
    """Test5RejoinMix3: an amnesiac R0 must not answer for old instances it accepted in."""
    async with setup(short_tmp, groups=1, replicas=5) as tc:
        await tc.join(0)
        ck = await tc.clerk()
        k1 = randstring(10)
        k1v, _ = await preload(tc, ck, k1, None)
        await tc.kill1(0, 1)
        await tc.kill1(0, 2)
        for _ in range(100 + random.randrange(7)):
            x = randstring(10)
            await ck.append(k1, x)
            k1v += x
        await tc.kill1(0, 0, deletefiles=True)
        await trio.sleep(0.05)
        await tc.start1(0, 1)
        await tc.start1(0, 2)
        await trio.sleep(0.001)
        await tc.start1(0, 0)
        x1, x2 = randstring(10), randstring(10)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ck.append, k1, x1)
            await trio.sleep(0.01)
            await ck.append(k1, x2)
        v = await ck.get(k1)
        assert v in (k1v + x1 + x2, k1v + x2 + x1), "wrong value"

