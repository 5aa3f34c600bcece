"""The Redis-protocol gateway under redis-benchmark, beside redis-server and the native client.

Figures, all from one run: `redis-benchmark -t set,get -c 50` (then with `-P 16`) against
the gateway in front of a local 1-group x 3-replica cluster; the same against a
`redis-server` started here with `appendonly yes, appendfsync always` (one node syncing
each write: the ratio is the price of three synced Paxos replicas plus the gateway); and
the native Trio client's put and get rates with 50 concurrent tasks on the same cluster.
Where redis-benchmark or redis-server is missing, that part says how to install it and is
skipped.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import trio

from diskv_trio.client import Client, connect
from diskv_trio.cluster import open_local_cluster
from diskv_trio.net import Role
from diskv_trio.resp import RespGateway

CLIENTS = 50
"""Concurrent connections (redis-benchmark -c) and native client tasks."""

GATEWAY_REQUESTS = 10_000
REDIS_REQUESTS = 100_000
PIPELINE_DEPTH = 16
NATIVE_DURATION_S = 4.0
VALUE = b"x" * 3
"""redis-benchmark's default value size (3 bytes), used by the native client too."""

INSTALL_HINT = "apt-get install -y redis-tools redis-server (Debian/Ubuntu)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _redis_benchmark(
    port: int, requests: int, pipeline: int, password: str | None
) -> dict[str, float]:
    argv = [
        "redis-benchmark",
        "-p",
        str(port),
        "-t",
        "set,get",
        "-n",
        str(requests),
        "-c",
        str(CLIENTS),
        "-P",
        str(pipeline),
        "-r",
        "10000",
        "--csv",
    ]
    if password is not None:
        argv += ["-a", password]
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    rates = {}
    for row in csv.reader(io.StringIO(done.stdout.decode())):
        if len(row) >= 2 and row[0] in ("SET", "GET"):
            rates[row[0]] = float(row[1])
    if not rates:
        raise RuntimeError(f"redis-benchmark gave no figures: {done.stderr.decode()[-300:]}")
    return rates


async def _native(kv: Client, kind: str) -> float:
    count = 0
    deadline = time.monotonic() + NATIVE_DURATION_S

    async def worker(me: int) -> None:
        nonlocal count
        n = 0
        while time.monotonic() < deadline:
            key = b"native:%d:%d" % (me, n % 200)
            if kind == "SET":
                await kv.put(key, VALUE)
            else:
                await kv.get(key)
            count += 1
            n += 1

    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        for me in range(CLIENTS):
            nursery.start_soon(worker, me)
    return count / (time.monotonic() - started)


def _line(label: str, rates: dict[str, float], baseline: dict[str, float] | None = None) -> str:
    parts = []
    for kind in ("SET", "GET"):
        text = f"{kind} {rates[kind]:>9,.0f}/s"
        if baseline is not None and kind in baseline:
            text += f" ({rates[kind] / baseline[kind]:.3f}x)"
        parts.append(text)
    return f"{label:<44} " + "   ".join(parts)


async def _redis_server_rates(directory: Path) -> dict[str, dict[str, float]]:
    port = _free_port()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(10):
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    await stream.aclose()
                    break
                except OSError:
                    await trio.sleep(0.05)
        return {
            f"P{pipeline}": await _redis_benchmark(port, REDIS_REQUESTS, pipeline, None)
            for pipeline in (1, PIPELINE_DEPTH)
        }
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        process.kill()
        await process.wait()


async def _main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="dkvr-", dir="/tmp"))
    have_benchmark = shutil.which("redis-benchmark") is not None
    have_server = shutil.which("redis-server") is not None
    try:
        redis_rates = None
        if not have_benchmark:
            print(
                f"redis-benchmark not installed: gateway and redis-server parts skipped ({INSTALL_HINT})"
            )
        elif not have_server:
            print(f"redis-server not installed: its baseline is skipped ({INSTALL_HINT})")
        else:
            (directory / "redis").mkdir()
            redis_rates = await _redis_server_rates(directory / "redis")
        async with open_local_cluster(
            directory / "c", groups=1, replicas=3, cluster="bench"
        ) as cluster:
            await cluster.join(cluster.gids[0])
            assert cluster.credentials is not None
            password = cluster.credentials.keys[Role.CLIENT].hex()
            async with connect(
                cluster.masters, cluster="bench", credentials=cluster.credentials
            ) as kv:
                await kv.put("warm", "up")
                native = {kind: await _native(kv, kind) for kind in ("SET", "GET")}
                print(_line(f"native Trio client, {CLIENTS} tasks (put/get)", native))
                if not have_benchmark:
                    return
                gateway = RespGateway(kv, password=password.encode())
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(gateway.serve, "127.0.0.1", 0)
                    for pipeline in (1, PIPELINE_DEPTH):
                        rates = await _redis_benchmark(port, GATEWAY_REQUESTS, pipeline, password)
                        print(
                            _line(
                                f"gateway, redis-benchmark -c {CLIENTS} -P {pipeline}",
                                rates,
                                native,
                            )
                            + "  (x: of native)"
                        )
                        if redis_rates is not None:
                            base = redis_rates[f"P{pipeline}"]
                            print(_line(f"redis-server appendfsync always, -P {pipeline}", base))
                            print(
                                f"{'':<44} gateway/redis-server: SET {rates['SET'] / base['SET']:.3f}x, "
                                f"GET {rates['GET'] / base['GET']:.3f}x"
                            )
                    nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run() -> None:
    trio.run(_main)


if __name__ == "__main__":
    run()
