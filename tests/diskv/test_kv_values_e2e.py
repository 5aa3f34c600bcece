"""Bytes values, Delete and compare-and-set end to end: server processes, the CLI, and the
Trio, blocking and asyncio clients against one real cluster.

Each test starts a local cluster (3 shardmasters, groups of 3 replica processes, the default
crc32c sharding) and stops every process when it ends. What is checked: binary values make
the round trip byte for byte through `diskv put KEY -` and `diskv get KEY > file`; a missing
key is told apart from an empty value (exit status 3, None); delete and compare-and-set
report what they did; concurrent compare-and-set increments from several clients never lose
an update; the blocking and asyncio clients give the same answers as the Trio client.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import trio

from diskv_trio import connect, connect_asyncio, connect_blocking
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.kvproto import DEFAULT_SHARDING

BINARY = bytes(range(256)) * 64 + b"\x00\xff\n"


async def run_diskv(*args: str, cwd: Path, stdin: bytes = b"") -> tuple[int, bytes, str]:
    """`python -m diskv_trio ARGS` with `stdin`; (status, stdout bytes, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "DISKV_MASTERS"}
    result = await trio.run_process(
        [sys.executable, "-m", "diskv_trio", *args],
        cwd=cwd, env=env, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
    )
    return result.returncode, result.stdout, result.stderr.decode()


async def joined(cluster: LocalCluster) -> None:
    for gid in cluster.gids:
        await cluster.join(gid)


async def test_cli_moves_bytes_and_reports_absent_keys(short_tmp: Path) -> None:
    async with open_local_cluster(short_tmp / "diskv-data", groups=2, replicas=3) as cluster:
        cluster.write_description()
        await joined(cluster)
        assert await run_diskv("put", "blob", "-", cwd=short_tmp, stdin=BINARY) == (0, b"", "")
        status, out, err = await run_diskv("get", "blob", cwd=short_tmp)
        assert (status, out) == (0, BINARY), err
        status, out, err = await run_diskv("get", "nothing", cwd=short_tmp)
        assert (status, out) == (3, b"") and "no such key" in err
        assert (await run_diskv("put", "empty", "", cwd=short_tmp))[0] == 0
        assert await run_diskv("get", "empty", cwd=short_tmp) == (0, b"", "")  # empty, present
        assert (await run_diskv("delete", "blob", cwd=short_tmp))[0] == 0
        status, _, err = await run_diskv("delete", "blob", cwd=short_tmp)
        assert status == 3 and "no such key" in err
        assert (await run_diskv("cas", "--absent", "lock", "me", cwd=short_tmp))[0] == 0
        status, _, err = await run_diskv("cas", "--absent", "lock", "you", cwd=short_tmp)
        assert status == 3 and "not written" in err
        assert (await run_diskv("cas", "lock", "me", "-", cwd=short_tmp, stdin=b"\x00"))[0] == 0
        assert (await run_diskv("get", "lock", cwd=short_tmp))[:2] == (0, b"\x00")
        status, _, err = await run_diskv("cas", "lock", "x", cwd=short_tmp)
        assert status == 2 and "usage" in err


async def test_concurrent_cas_increments_lose_no_update(short_tmp: Path) -> None:
    """Four clients each add 1 to a counter eight times by read + compare-and-set retries."""
    async with open_local_cluster(short_tmp / "c", groups=2, replicas=3, cluster="test") as cluster:
        await joined(cluster)
        config = await cluster.shardmaster_clerk().query(-1)
        assert config.sharding == DEFAULT_SHARDING
        assert set(config.shards) == set(cluster.gids)  # keys spread over both groups
        clients, rounds = 4, 8

        async def incrementer() -> None:
            async with connect(cluster.masters, cluster="test", credentials=cluster.credentials) as kv:
                for _ in range(rounds):
                    while True:
                        seen = await kv.get("counter")
                        new = str(int(seen or b"0") + 1)
                        if await kv.cas("counter", seen, new):
                            break

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(incrementer)
            async with connect(cluster.masters, cluster="test", credentials=cluster.credentials) as kv:
                assert await kv.get_text("counter") == str(clients * rounds)
                assert await kv.delete("counter") is True
                assert await kv.get("counter") is None
                assert await kv.delete("counter") is False


def blocking_session(masters: list[str], credentials: object) -> list[object]:
    with connect_blocking(masters, cluster="test", credentials=credentials, timeout_s=60) as kv:  # type: ignore[arg-type]
        kv.put("sync", b"\x01\x02")
        return [kv.get("sync"), kv.get("missing"), kv.cas("sync", b"\x01\x02", "text"),
                kv.get_text("sync"), kv.delete("sync"), kv.get("sync")]


async def asyncio_session(masters: list[str], credentials: object) -> list[object]:
    async with connect_asyncio(masters, cluster="test", credentials=credentials, timeout_s=60) as kv:  # type: ignore[arg-type]
        await kv.put("aio", b"\x01\x02")
        results = [await kv.get("aio"), await kv.get("missing"), await kv.cas("aio", b"\x01\x02", "text"),
                   await kv.get_text("aio"), await kv.delete("aio"), await kv.get("aio")]
        gathered = await asyncio.gather(*(kv.append("many", str(i)) for i in range(5)))
        assert gathered == [None] * 5
        results.append(sorted((await kv.get_text("many")) or ""))
        return results


async def test_blocking_and_asyncio_clients_match_the_trio_client(short_tmp: Path) -> None:
    async with open_local_cluster(short_tmp / "c", groups=1, replicas=3, cluster="test") as cluster:
        await joined(cluster)
        want: list[object] = [b"\x01\x02", None, True, "text", True, None]
        with trio.fail_after(120):
            got = await trio.to_thread.run_sync(blocking_session, cluster.masters, cluster.credentials)
            assert got == want
            got = await trio.to_thread.run_sync(
                lambda: asyncio.run(asyncio_session(cluster.masters, cluster.credentials))
            )
            assert got == [*want, sorted("01234")]
