"""Benchmark: RPC round trips per second against a bare Trio ping-pong, same run.

Both servers run in a separate process on a Unix socket. The RPC server is the real
`RpcServer` with credentials (HMAC handshake, CBOR, request ids, one task per request);
the baseline echoes length-prefixed byte frames with no CBOR. Each is measured with one
caller and with 64 calls in flight on one connection (the baseline pipelines 64 frames),
then the ratios are printed. The RPC is measured as a client (whose frames are bounded in
items before decoding) and as a peer (not), which shows the cost of that check; and new
connections per second (handshake + one call) show the cost of authentication. A third
server serves the same RPC over TLS (certificates from the local CA of `cluster up --tls`;
the caller holds only ca.pem, as a client does): its rows show what TLS costs against the
plain RPC of the same run. Run with ``python -m tools.bench.rpc`` (about 35 s).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from diskv_trio.cluster._certificates import create_tls_files, server_tls_dir
from diskv_trio.net import (
    EVERYONE,
    CallContext,
    Credentials,
    Identity,
    Role,
    RpcServer,
    Tls,
    client_context,
    create_credentials,
    load_credentials,
    load_tls,
    open_rpc_pool,
)

MEASURE_S = 1.5
WARMUP_S = 0.2
ROUNDS = 2
"""Bare and RPC are measured alternately, ROUNDS times, best of each kept: the machine is
shared, and alternating keeps a burst of outside load from favouring one side."""
CONCURRENCY = 64
CLUSTER = "bench"
ARGS = {"key": "k1", "value": "x" * 100}
PAYLOAD = b"x" * 120
"""Baseline payload, about the size of the CBOR request above."""
SERVER_NAME = "bench-server"


# -- servers (run in the child process) ---------------------------------------------------


async def _echo_handler(args: dict[str, Any], context: CallContext) -> dict[str, Any]:
    return args


async def _serve_rpc(path: str, tls: bool = False) -> None:
    directory = Path(path).parent
    keys = load_credentials(directory / "creds")
    if tls:
        keys = Credentials(keys.keys, tls=load_tls(server_tls_dir(directory / "tls", SERVER_NAME)))
    server = RpcServer(
        f"unix:{path}",
        Identity(CLUSTER, Role.PEER, SERVER_NAME),
        {"bench.echo": _echo_handler},
        roles=EVERYONE,
        credentials=keys,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        print("ready", flush=True)


async def _echo_frames(stream: trio.SocketStream) -> None:
    buffer = bytearray()
    try:
        while data := await stream.receive_some(65536):
            buffer += data
            end = 0
            while len(buffer) - end >= 4:
                length = int.from_bytes(buffer[end : end + 4], "big")
                if len(buffer) - end < 4 + length:
                    break
                end += 4 + length
            if end:
                await stream.send_all(bytes(buffer[:end]))
                del buffer[:end]
    except trio.BrokenResourceError:
        pass


async def _serve_echo(path: str) -> None:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(16)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, _echo_frames, [trio.SocketListener(sock)])
        print("ready", flush=True)


# -- clients ------------------------------------------------------------------------------


async def _count_for(duration_s: float, worker: Callable[[], Awaitable[None]], tasks: int) -> int:
    count = 0

    async def loop() -> None:
        nonlocal count
        while True:
            await worker()
            count += 1

    with trio.move_on_after(duration_s):
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(loop)
    return count


async def _rate(worker: Callable[[], Awaitable[None]], tasks: int) -> float:
    await _count_for(WARMUP_S, worker, tasks)
    return await _count_for(MEASURE_S, worker, tasks) / MEASURE_S


async def _measure_rpc(path: str, role: Role, keys: Credentials) -> tuple[float, float]:
    address = f"unix:{path}"
    async with open_rpc_pool(Identity(CLUSTER, role, "bench-caller"), credentials=keys) as pool:

        async def one_call() -> None:
            await pool.call(address, "bench.echo", ARGS, deadline_s=10.0)

        return await _rate(one_call, 1), await _rate(one_call, CONCURRENCY)


async def _measure_connects(path: str, keys: Credentials) -> float:
    """New connections per second, each with its handshake and one call."""
    address = f"unix:{path}"

    async def connect_and_call() -> None:
        async with open_rpc_pool(Identity(CLUSTER, Role.CLIENT, "c"), credentials=keys) as pool:
            await pool.call(address, "bench.echo", ARGS, deadline_s=10.0)

    return await _rate(connect_and_call, 1)


async def _receive_exactly(stream: trio.SocketStream, buffer: bytearray, count: int) -> bytes:
    while len(buffer) < count:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("echo server closed the connection")
        buffer += data
    out = bytes(buffer[:count])
    del buffer[:count]
    return out


async def _measure_bare(path: str) -> tuple[float, float]:
    frame = len(PAYLOAD).to_bytes(4, "big") + PAYLOAD
    async with await trio.open_unix_socket(path) as stream:
        buffer = bytearray()

        async def ping_pong() -> None:
            await stream.send_all(frame)
            header = await _receive_exactly(stream, buffer, 4)
            await _receive_exactly(stream, buffer, int.from_bytes(header, "big"))

        single = await _rate(ping_pong, 1)

    async with await trio.open_unix_socket(path) as stream:
        buffer = bytearray()
        credits = trio.Semaphore(CONCURRENCY)
        received = 0

        async def sender() -> None:
            while True:
                await credits.acquire()
                await stream.send_all(frame)

        async def receiver() -> None:
            nonlocal received
            while True:
                header = await _receive_exactly(stream, buffer, 4)
                await _receive_exactly(stream, buffer, int.from_bytes(header, "big"))
                received += 1
                credits.release()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            nursery.start_soon(receiver)
            await trio.sleep(WARMUP_S)
            before = received
            await trio.sleep(MEASURE_S)
            pipelined = (received - before) / MEASURE_S
            nursery.cancel_scope.cancel()
    return single, pipelined


def _start_child(mode: str, path: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tools.bench.rpc", mode, path], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if line.strip() != "ready":
        child.kill()
        raise RuntimeError(f"{mode} server did not start")
    return child


def _stop_child(child: subprocess.Popen[str]) -> None:
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


async def _measure_all(directory: str) -> dict[str, float]:
    best: dict[str, float] = {}
    keys = load_credentials(Path(directory) / "creds")
    for _ in range(ROUNDS):
        bare_single, bare_many = await _measure_bare(f"{directory}/echo")
        rpc_single, rpc_many = await _measure_rpc(f"{directory}/rpc", Role.CLIENT, keys)
        peer_single, peer_many = await _measure_rpc(f"{directory}/rpc", Role.PEER, keys)
        connects = await _measure_connects(f"{directory}/rpc", keys)
        over_tls = Credentials(
            keys.keys, tls=Tls(client_context(Path(directory) / "tls" / "ca.pem"))
        )
        tls_single, tls_many = await _measure_rpc(f"{directory}/rpc-tls", Role.CLIENT, over_tls)
        tls_connects = await _measure_connects(f"{directory}/rpc-tls", over_tls)
        for name, rate in [
            ("bare_single", bare_single),
            ("bare_many", bare_many),
            ("rpc_single", rpc_single),
            ("rpc_many", rpc_many),
            ("peer_single", peer_single),
            ("peer_many", peer_many),
            ("connects", connects),
            ("tls_single", tls_single),
            ("tls_many", tls_many),
            ("tls_connects", tls_connects),
        ]:
            best[name] = max(best.get(name, 0.0), rate)
    return best


def run() -> None:
    """Measure and print RPC and bare round trips per second, and their ratios."""
    directory = tempfile.mkdtemp(prefix="bench-rpc-", dir="/tmp")
    create_credentials(Path(directory) / "creds")
    create_tls_files(Path(directory) / "tls", [SERVER_NAME])
    children: list[subprocess.Popen[str]] = []
    try:
        children.append(_start_child("serve-echo", f"{directory}/echo"))
        children.append(_start_child("serve-rpc", f"{directory}/rpc"))
        children.append(_start_child("serve-rpc-tls", f"{directory}/rpc-tls"))
        best = trio.run(_measure_all, directory)
    finally:
        for child in children:
            _stop_child(child)
        shutil.rmtree(directory, ignore_errors=True)
    bare_single, bare_many = best["bare_single"], best["bare_many"]
    rpc_single, rpc_many = best["rpc_single"], best["rpc_many"]
    print(
        "round trips/s over one Unix connection, server in another process"
        f" (best of {ROUNDS} x {MEASURE_S} s)"
    )
    print(f"  {'':34}{'1 caller':>12}{f'{CONCURRENCY} in flight':>16}")
    print(f"  {'bare Trio ping-pong (bytes)':34}{bare_single:>12,.0f}{bare_many:>16,.0f}")
    print(f"  {'RPC as client (CBOR, ids, tasks)':34}{rpc_single:>12,.0f}{rpc_many:>16,.0f}")
    print(f"  {'RPC / bare':34}{rpc_single / bare_single:>12.2f}{rpc_many / bare_many:>16.2f}")
    peer_single, peer_many = best["peer_single"], best["peer_many"]
    print(f"  {'RPC as peer (no item bound)':34}{peer_single:>12,.0f}{peer_many:>16,.0f}")
    print(
        f"  {'client / peer (cost of the bound)':34}{rpc_single / peer_single:>12.2f}{rpc_many / peer_many:>16.2f}"
    )
    connects = best["connects"]
    print(
        f"  new connections/s (HMAC handshake + 1 call): {connects:,.0f}"
        f" = {bare_single / connects:.1f} bare round trips each"
    )
    print(
        f"  RPC mean latency, 1 caller: {1e6 / rpc_single:.0f} us (bare {1e6 / bare_single:.0f} us)"
    )
    tls_single, tls_many, tls_connects = best["tls_single"], best["tls_many"], best["tls_connects"]
    print(f"  {'RPC as client over TLS':34}{tls_single:>12,.0f}{tls_many:>16,.0f}")
    print(f"  {'TLS / plain RPC':34}{tls_single / rpc_single:>12.2f}{tls_many / rpc_many:>16.2f}")
    print(
        f"  new connections/s over TLS (TLS + HMAC handshakes + 1 call): {tls_connects:,.0f}"
        f" = {tls_connects / connects:.2f} x plain"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "serve-rpc":
        trio.run(_serve_rpc, args[1])
    elif len(args) == 2 and args[0] == "serve-rpc-tls":
        trio.run(_serve_rpc, args[1], True)
    elif len(args) == 2 and args[0] == "serve-echo":
        trio.run(_serve_echo, args[1])
    elif not args:
        run()
    else:
        print("usage: python -m tools.bench.rpc", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
