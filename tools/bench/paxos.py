"""Paxos agreements per second: 3 peers on loopback Unix sockets, journals syncing.

The peers run on the servers' own wiring (`diskv_trio.rsm.open_paxos_server`): the journal
storage replicas use, the RPC pool transport, authenticated peer connections.

Two figures: serial (one agreement at a time, proposed by peer 0, each awaited before the
next) and pipelined (32 instances in flight). Each agreement journals and fsyncs a promise
and an accept on every acceptor before replying; group commit lets concurrent agreements
share fsyncs. Run with `python -m tools.bench.paxos`; prints figures, asserts nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import AsyncExitStack

import trio

from diskv_trio.net import Credentials, Faults, Role
from diskv_trio.rsm import PaxosServer, open_paxos_server

PEERS = 3
SERIAL_SECONDS = 3.0
PIPELINED_SECONDS = 4.0
IN_FLIGHT = 32
VALUE = "x" * 100  # a 100-byte value, like the reference points in DESIGN.md section 9


def _syncs(nodes: list[PaxosServer]) -> int:
    return sum(node.storage.sync_count for node in nodes)


async def _serial(nodes: list[PaxosServer], first_seq: int) -> tuple[int, float, int]:
    proposer = nodes[0].peer
    seq = first_seq
    syncs = _syncs(nodes)
    start = time.perf_counter()
    deadline = start + SERIAL_SECONDS
    while time.perf_counter() < deadline:
        proposer.start(seq, VALUE)
        await proposer.wait_decided(seq)
        seq += 1
    return seq - first_seq, time.perf_counter() - start, _syncs(nodes) - syncs


async def _pipelined(nodes: list[PaxosServer], first_seq: int) -> tuple[int, float, int]:
    proposer = nodes[0].peer
    next_seq = first_seq
    decided = 0
    syncs = _syncs(nodes)
    start = time.perf_counter()
    deadline = start + PIPELINED_SECONDS
    limiter = trio.Semaphore(IN_FLIGHT)

    async def one(seq: int) -> None:
        nonlocal decided
        try:
            await proposer.wait_decided(seq)
            decided += 1
        finally:
            limiter.release()

    async with trio.open_nursery() as nursery:
        while time.perf_counter() < deadline:
            await limiter.acquire()
            proposer.start(next_seq, VALUE)
            nursery.start_soon(one, next_seq)
            next_seq += 1
    elapsed = time.perf_counter() - start
    return decided, elapsed, _syncs(nodes) - syncs


async def _main() -> None:
    socket_dir = tempfile.mkdtemp(dir="/tmp", prefix="pxb-")
    data_dir = tempfile.mkdtemp(prefix="pxb-data-")
    try:
        addresses = [f"unix:{socket_dir}/p{i}" for i in range(PEERS)]
        node_ids = [f"paxos-{i}" for i in range(PEERS)]
        credentials = Credentials({Role.PEER: os.urandom(32)})
        async with AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    open_paxos_server(
                        addresses,
                        i,
                        node_ids,
                        f"{data_dir}/p{i}",
                        cluster="bench-paxos",
                        credentials=credentials,
                        faults=Faults(),
                    )
                )
                for i in range(PEERS)
            ]
            count, elapsed, syncs = await _serial(nodes, 0)
            print(
                f"paxos serial:    {count / elapsed:8.0f} agreements/s "
                f"({count} in {elapsed:.1f} s, {syncs / max(count, 1):.1f} fsyncs per agreement, "
                f"3 peers, unix sockets, journals syncing)"
            )
            count2, elapsed2, syncs2 = await _pipelined(nodes, count)
            print(
                f"paxos pipelined: {count2 / elapsed2:8.0f} agreements/s "
                f"({count2} in {elapsed2:.1f} s, {IN_FLIGHT} in flight, "
                f"{syncs2 / max(count2, 1):.2f} fsyncs per agreement)"
            )
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def run() -> None:
    """Print Paxos throughput figures (takes about 8 s)."""
    trio.run(_main)


if __name__ == "__main__":
    run()
