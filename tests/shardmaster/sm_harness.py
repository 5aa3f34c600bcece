"""In-process shardmaster replicas over real Unix sockets, for the shardmaster suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.net import Identity, RpcPool, open_rpc_pool
from diskv_trio.rsm import NodeSettings, ReplicaNode
from diskv_trio.shardmaster import ShardmasterClerk, shardmaster_node


@dataclass
class ShardmasterGroup:
    """Running shardmaster replicas plus a pool for clerks."""

    addresses: list[str]
    nodes: list[ReplicaNode]
    pool: RpcPool
    scopes: list[trio.CancelScope] = field(default_factory=list)

    def clerk(self, *indices: int) -> ShardmasterClerk:
        """A clerk that knows the given replicas (all of them by default)."""
        chosen = [self.addresses[i] for i in indices] if indices else self.addresses
        return ShardmasterClerk(chosen, self.pool)


@asynccontextmanager
async def shardmasters(
    directory: Path, count: int = 3, lease_s: float | None = None
) -> AsyncIterator[ShardmasterGroup]:
    addresses = [f"unix:{directory}/sm-{i}.sock" for i in range(count)]
    nodes = [
        shardmaster_node(
            NodeSettings(
                cluster="test",
                role="shardmaster",
                group=0,
                me=i,
                peers=tuple(addresses),
                directory=directory / f"sm-{i}",
                bootstrap=True,
                lease_s=lease_s,
            ),
            COURSE_SHARDING,  # the course suite's layout: 10 shards
        )
        for i in range(count)
    ]
    async with open_rpc_pool(Identity("test", "operator", "test-clerk")) as pool:
        async with trio.open_nursery() as nursery:
            for node in nodes:
                await nursery.start(node.run)
            for node in nodes:
                await node.serving.wait()
            yield ShardmasterGroup(addresses, nodes, pool)
            nursery.cancel_scope.cancel()
