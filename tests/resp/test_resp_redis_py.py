"""redis-py (sync and asyncio), redis-cli and `diskv resp` against a real local cluster.

A cluster of processes (1 group x 3 replicas) with the gateway in the test's Trio loop; the
Redis clients run in worker threads (redis.asyncio in its own asyncio loop there), so they
see exactly what any Redis client sees over TCP. Every command the gateway serves is
checked with binary values, pipelines and a refused password.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import redis
import redis.asyncio
import trio

from diskv_trio.client import connect
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.net import Role
from diskv_trio.resp import RespGateway

pytestmark = pytest.mark.slow

T = TypeVar("T")
BINARY = bytes(range(256)) + b"\r\n$-1\r\n*2\r\n"


@asynccontextmanager
async def cluster_with_gateway(directory: Path) -> AsyncIterator[tuple[LocalCluster, int, str]]:
    """A joined 1x3 cluster and a gateway on a free port; yields (cluster, port, password)."""
    async with open_local_cluster(directory / "c", groups=1, replicas=3, cluster="resp") as cluster:
        await cluster.join(cluster.gids[0])
        assert cluster.credentials is not None
        password = cluster.credentials.keys[Role.CLIENT].hex()
        async with connect(cluster.masters, cluster="resp", credentials=cluster.credentials) as kv:
            gateway = RespGateway(kv, password=password.encode())
            async with trio.open_nursery() as nursery:
                port = await nursery.start(gateway.serve, "127.0.0.1", 0)
                yield cluster, port, password
                nursery.cancel_scope.cancel()


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(60):
        return await trio.to_thread.run_sync(fn)


def sync_session(port: int, password: str) -> None:
    r = redis.Redis(port=port, password=password, socket_timeout=30)
    try:
        assert r.ping() is True
        assert r.echo(BINARY) == BINARY
        assert r.get("missing") is None
        assert r.set(b"bin", BINARY) is True
        assert r.get(b"bin") == BINARY
        assert r.strlen(b"bin") == len(BINARY)
        assert r.set("empty", b"") is True
        assert r.get("empty") == b""  # an empty value is not a missing key
        assert r.set("empty", b"x", nx=True) is None
        assert r.set("nx", b"1", nx=True) is True
        assert r.set("xx-missing", b"1", xx=True) is None
        assert r.set("nx", b"2", xx=True, get=True) == b"1"
        assert r.append("log", b"ab") == 2
        assert r.append("log", b"\x00c") == 4
        assert r.get("log") == b"ab\x00c"
        assert r.mget(["log", "missing", "nx"]) == [b"ab\x00c", None, b"2"]
        assert r.exists("log", "missing", "nx") == 2
        assert r.delete("log", "missing", "nx") == 2
        assert r.exists("log") == 0
        assert r.client_setname("tester") is True
        assert r.client_getname() == "tester"
        assert r.execute_command("SELECT", 0) in (True, b"OK")
        assert r.command_count() >= 16
        assert r.info("server")["redis_mode"] == "standalone"
        with pytest.raises(redis.ResponseError, match="unknown command"):
            r.execute_command("FLUSHALL")
        assert r.ping() is True  # the connection lives after an unknown command
        pipe = r.pipeline(transaction=False)
        for i in range(100):
            pipe.append("piped", b"%d;" % i)
        pipe.get("piped")
        results = pipe.execute()
        assert results[:100] == [len(b"".join(b"%d;" % j for j in range(i + 1))) for i in range(100)]
        assert results[100] == b"".join(b"%d;" % i for i in range(100))
    finally:
        r.close()
    wrong = redis.Redis(port=port, password="0" * 64, socket_timeout=30)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong.close()
    anonymous = redis.Redis(port=port, socket_timeout=30)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get("bin")
    anonymous.close()


async def asyncio_session(port: int, password: str) -> None:
    r = redis.asyncio.Redis(port=port, password=password, protocol=3, socket_timeout=30)
    try:
        assert await r.set("async", BINARY) is True
        assert await r.get("async") == BINARY
        assert await r.get("missing") is None
        assert await r.mget("async", "missing") == [BINARY, None]
        results = await asyncio.gather(*(r.append("async-counter", b"x") for _ in range(20)))
        assert sorted(results) == list(range(1, 21))  # each APPEND saw its own exact length
        async with r.pipeline(transaction=False) as pipe:
            pipe.set("p", b"1").get("p").delete("p").exists("p")
            assert await pipe.execute() == [True, b"1", 1, 0]
        with pytest.raises(redis.ResponseError, match="unknown command"):
            await r.execute_command("LPUSH", "l", "x")
    finally:
        await r.aclose()


async def test_redis_py_sync_and_asyncio_against_a_real_cluster(short_tmp: Path) -> None:
    async with cluster_with_gateway(short_tmp) as (_, port, password):
        await in_thread(lambda: sync_session(port, password))
        await in_thread(lambda: asyncio.run(asyncio_session(port, password)))


REDIS_CLI_MISSING = "redis-cli not installed (apt-get install -y redis-tools)"


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason=REDIS_CLI_MISSING)
async def test_diskv_resp_command_with_redis_cli(short_tmp: Path) -> None:
    """`diskv resp` as its own process, driven by redis-cli (RESP2, then RESP3 with -3)."""
    async with open_local_cluster(short_tmp / "c", groups=1, replicas=3, cluster="resp") as cluster:
        await cluster.join(cluster.gids[0])
        env = os.environ | {
            "DISKV_MASTERS": ",".join(cluster.masters),
            "DISKV_CREDENTIALS": str(cluster.credentials_dir),
        }
        argv = [sys.executable, "-m", "diskv_trio", "resp", "--listen", "127.0.0.1:0", "--cluster", "resp"]
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                functools.partial(trio.run_process, argv, env=env, stdout=subprocess.PIPE, check=False))
            try:
                assert process.stdout is not None
                with trio.fail_after(30):
                    banner = (await process.stdout.receive_some(4096)).decode()
                port = banner.split("RESP gateway on 127.0.0.1:")[1].split()[0]
                key = (cluster.credentials_dir / "client.key").read_text().strip()

                async def cli(*args: str) -> str:
                    done = await trio.run_process(
                        ["redis-cli", "-p", port, "-a", key, "--no-auth-warning", *args],
                        capture_stdout=True, capture_stderr=True, check=False)
                    return done.stdout.decode().strip()

                with trio.fail_after(60):
                    assert await cli("set", "greeting", "hello") == "OK"
                    assert await cli("append", "greeting", ", world") == "12"
                    assert await cli("get", "greeting") == "hello, world"
                    assert await cli("-3", "get", "nope") == ""
                    assert await cli("mget", "greeting", "nope") == "hello, world"
                    assert await cli("del", "greeting") == "1"
                    assert await cli("exists", "greeting") == "0"
                    assert "ERR unknown command" in await cli("lpush", "l", "x")
                    assert "proto 3" in await cli("-3", "hello", "3")
                    refused = await trio.run_process(["redis-cli", "-p", port, "-a", "wrong", "get", "k"],
                                                     capture_stdout=True, capture_stderr=True, check=False)
                    assert b"WRONGPASS" in refused.stdout + refused.stderr
            finally:
                process.terminate()
                with trio.move_on_after(10):
                    await process.wait()
                process.kill()
