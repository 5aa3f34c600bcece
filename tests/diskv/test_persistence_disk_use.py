"""Disk use stays near the live state: in-process replicas (no process needs killing here).

After a write-heavy run (many overwrites of a small key set) and an idle period, each
replica's directory should hold little more than one snapshot of its live state.
"""

from __future__ import annotations

import random
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from diskv_trio.client import Client, connect
from diskv_trio.net import Credentials, Identity, open_rpc_pool
from diskv_trio.rsm import NodeSettings, ReplicaNode
from diskv_trio.shardkv import ShardKVState, shardkv_node
from diskv_trio.shardmaster import ShardmasterClerk, shardmaster_node

CLUSTER = "test"
GID = 100
KEYS = 40
VALUE_CHARS = 2048
PUTS = 1200
WRITERS = 8

IDLE_TIMEOUT_S = 10.0
"""Bound on the wait for the idle-time snapshot (IDLE_AFTER_S is 0.5 s, checks every 0.25 s)."""

POLL_S = 0.05

DISK_PER_LIVE_MAX = 1.5
DISK_SLACK_BYTES = 16 * 1024
"""Bound on a replica's directory after idling: 1.5 x live bytes + 16 KiB. Once idle, the
journal is folded into one snapshot, so the directory holds that snapshot (the live keys and
values, duplicate table and Paxos instances not yet forgotten, CBOR-framed, about 1.05 x
live here), an empty segment and the identity file (under 100 bytes). The slack covers the
framing, the configs and the few retained Paxos instances; 1.5 leaves room for instances
retained because done values have not yet reached every peer. During a run the policy
allows about 2 x live plus COMPACT_FLOOR_BYTES (64 KiB) plus what arrives between two
compaction checks, so that figure is printed, not asserted."""


def directory_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def machine(node: ReplicaNode) -> ShardKVState:
    assert node.rsm is not None
    state = node.rsm.machine
    assert isinstance(state, ShardKVState)
    return state


@asynccontextmanager
async def in_process_group(directory: Path) -> AsyncIterator[tuple[list[ReplicaNode], Client]]:
    """One shardmaster and a joined group of three shardkv replicas in this process."""
    master_address = f"unix:{directory}/m.sock"
    addresses = tuple(f"unix:{directory}/k{i}.sock" for i in range(3))
    master = shardmaster_node(
        NodeSettings(
            cluster=CLUSTER,
            role="shardmaster",
            group=0,
            me=0,
            peers=(master_address,),
            directory=directory / "m",
            bootstrap=True,
        )
    )
    nodes: list[ReplicaNode] = [
        shardkv_node(
            NodeSettings(
                cluster=CLUSTER,
                role="shardkv",
                group=GID,
                me=i,
                peers=addresses,
                directory=directory / f"k{i}",
                bootstrap=True,
            ),
            [master_address],
        )
        for i in range(3)
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(master.run)
        for node in nodes:
            await nursery.start(node.run)
        async with open_rpc_pool(Identity(CLUSTER, "operator", "test-admin")) as admin:
            await ShardmasterClerk([master_address], admin).join(GID, addresses)
        async with connect([master_address], cluster=CLUSTER, credentials=Credentials()) as kv:
            yield nodes, kv
        nursery.cancel_scope.cancel()


async def test_disk_use_near_live_state_after_idle(short_tmp: Path) -> None:
    """Write-heavy overwrites, then idle: each directory <= 1.5 x live + 16 KiB, no *.tmp."""
    rng = random.Random()
    with trio.fail_after(60):
        async with in_process_group(short_tmp) as (nodes, kv):
            reference: dict[str, str] = {}

            async def writer(w: int) -> None:
                for i in range(w, PUTS, WRITERS):
                    key = f"key-{i % KEYS}"
                    value = "".join(rng.choices(string.ascii_letters, k=VALUE_CHARS))
                    await kv.put(key, value)
                    if i % KEYS % WRITERS == w:  # one writer per key: last write is known
                        reference[key] = value

            async with trio.open_nursery() as nursery:
                for w in range(WRITERS):
                    nursery.start_soon(writer, w)
            written = PUTS * VALUE_CHARS
            busy = [directory_bytes(n.settings.directory) for n in nodes]

            with trio.fail_after(IDLE_TIMEOUT_S):
                while True:
                    storages = [n.storage for n in nodes]
                    assert all(s is not None for s in storages)
                    if all(s.journal.bytes_since_snapshot == 0 for s in storages if s):
                        break
                    await trio.sleep(POLL_S)

            for key, value in sorted(reference.items()):
                assert await kv.get_text(key) == value
            for node, busy_bytes in zip(nodes, busy, strict=True):
                directory = node.settings.directory
                live = machine(node).live_bytes()
                assert live >= KEYS * VALUE_CHARS
                used = directory_bytes(directory)
                print(
                    f"{directory.name}: {written} bytes written, live {live}, "
                    f"right after the run {busy_bytes} ({busy_bytes / live:.2f}x), "
                    f"after idling {used} ({used / live:.2f}x)"
                )
                assert used <= DISK_PER_LIVE_MAX * live + DISK_SLACK_BYTES, (
                    f"{directory.name}: {used} bytes on disk for {live} live bytes"
                )
                leftovers = [p.name for p in directory.rglob("*.tmp")]
                assert not leftovers, f"{directory.name}: leftover temp files {leftovers}"
