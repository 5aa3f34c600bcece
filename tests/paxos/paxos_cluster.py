"""A group of Paxos servers in the test process, wired as the replica nodes wire theirs
(`diskv_trio.rsm.open_paxos_server`: the server's journal storage, the RPC pool transport,
an RpcServer serving Paxos to authenticated peers only), each with its own journal
directory and Unix socket, plus the course's helpers (ndecided, waitn, waitmajority,
checkmax, part) with the course's polling schedule."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from diskv_trio.net import Credentials, Faults, Role
from diskv_trio.paxos import Fate, PaxosPeer
from diskv_trio.rsm import PaxosServer, open_paxos_server

CLUSTER = "paxos-course"

# waitn: up to 30 polls, sleeping 10 ms and doubling while below 1 s (about 30.7 s in all).
WAITN_POLLS = 30
WAITN_FIRST_SLEEP_S = 0.010
# checkmax: how long nobody may decide more than allowed.
CHECKMAX_WAIT_S = 3.0


class PaxosCluster:
    """Peers 0..n-1 at `unix:<socket_dir>/px<i>`, journals in `<data_dir>/p<i>`."""

    def __init__(self, nursery: trio.Nursery, n: int, socket_dir: str, data_dir: str) -> None:
        self._nursery = nursery
        self.n = n
        self.addresses = [f"unix:{socket_dir}/px{i}" for i in range(n)]
        self.node_ids = [f"paxos-{i}" for i in range(n)]
        self.directories = [os.path.join(data_dir, f"p{i}") for i in range(n)]
        self.faults = [Faults(seed=1000 + i) for i in range(n)]
        # Peers prove their role with a key, as in a deployed cluster.
        self.credentials = Credentials({Role.PEER: os.urandom(32)})
        self.nodes: list[PaxosServer | None] = [None] * n
        self._scopes: list[trio.CancelScope | None] = [None] * n
        self._stopped: list[trio.Event | None] = [None] * n

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self, i: int, *, recovering: bool = False) -> PaxosServer:
        assert self.nodes[i] is None, f"peer {i} is running"
        await self._nursery.start(self._run_node, i, recovering)
        node = self.nodes[i]
        assert node is not None
        return node

    async def _run_node(self, i: int, recovering: bool, task_status: trio.TaskStatus[None]) -> None:
        stopped = trio.Event()
        self._stopped[i] = stopped
        try:
            with trio.CancelScope() as scope:
                self._scopes[i] = scope
                async with open_paxos_server(
                    self.addresses,
                    i,
                    self.node_ids,
                    self.directories[i],
                    cluster=CLUSTER,
                    credentials=self.credentials,
                    faults=self.faults[i],
                    recovering=recovering,
                ) as node:
                    self.nodes[i] = node
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self.nodes[i] = None
            self._scopes[i] = None
            stopped.set()

    async def stop(self, i: int) -> None:
        scope, stopped = self._scopes[i], self._stopped[i]
        assert scope is not None and stopped is not None, f"peer {i} is not running"
        scope.cancel()
        await stopped.wait()

    async def restart(self, i: int) -> PaxosServer:
        await self.stop(i)
        return await self.start(i)

    async def lose_disk(self, i: int) -> PaxosServer:
        """Stop peer i, empty its directory, start it again recovering."""
        if self.nodes[i] is not None:
            await self.stop(i)
        shutil.rmtree(self.directories[i], ignore_errors=True)
        os.makedirs(self.directories[i])
        return await self.start(i, recovering=True)

    async def node_snapshot(self, i: int) -> None:
        node = self.nodes[i]
        assert node is not None
        await node.snapshot()

    def peer(self, i: int) -> PaxosPeer:
        node = self.nodes[i]
        assert node is not None, f"peer {i} is not running"
        return node.peer

    def live(self) -> list[int]:
        return [i for i in range(self.n) if self.nodes[i] is not None]

    # ---- faults ---------------------------------------------------------------------------

    def part(self, *groups: Iterable[int]) -> None:
        """Peers talk only within their group (the course's hard-link partitions)."""
        group_of: dict[int, set[int]] = {}
        for group in groups:
            members = set(group)
            for i in members:
                group_of[i] = members
        for i in range(self.n):
            mine = group_of.get(i, {i})
            self.faults[i].cut = {self.node_ids[j] for j in range(self.n) if j not in mine}

    def heal(self) -> None:
        self.part(range(self.n))

    def set_unreliable(self, unreliable: bool) -> None:
        for faults in self.faults:
            faults.unreliable = unreliable

    def rpc_total(self) -> int:
        return sum(f.paxos_rpc_count() for f in self.faults)

    # ---- the course's checks --------------------------------------------------------------

    def ndecided(self, seq: int) -> int:
        """Peers (among those running) that decided seq; fails if two decided values differ."""
        count = 0
        value: Any = None
        for i in self.live():
            fate, v = self.peer(i).status(seq)
            if fate is Fate.DECIDED:
                if count > 0 and v != value:
                    raise AssertionError(
                        f"decided values do not match; seq={seq} i={i} v={v!r} v1={value!r}"
                    )
                count += 1
                value = v
        return count

    async def waitn(self, seq: int, wanted: int) -> None:
        sleep_s = WAITN_FIRST_SLEEP_S
        for _ in range(WAITN_POLLS):
            if self.ndecided(seq) >= wanted:
                break
            await trio.sleep(sleep_s)
            if sleep_s < 1.0:
                sleep_s *= 2
        nd = self.ndecided(seq)
        assert nd >= wanted, f"too few decided; seq={seq} ndecided={nd} wanted={wanted}"

    async def waitmajority(self, seq: int) -> None:
        await self.waitn(seq, self.n // 2 + 1)

    async def checkmax(self, seq: int, most: int) -> None:
        await trio.sleep(CHECKMAX_WAIT_S)
        nd = self.ndecided(seq)
        assert nd <= most, f"too many decided; seq={seq} ndecided={nd} max={most}"


@asynccontextmanager
async def open_cluster(
    n: int, socket_dir: str, data_dir: str, *, start: Iterable[int] | None = None
) -> AsyncIterator[PaxosCluster]:
    """Start peers (all unless `start` says which) and stop every one on exit."""
    async with trio.open_nursery() as nursery:
        cluster = PaxosCluster(nursery, n, socket_dir, data_dir)
        try:
            for i in range(n) if start is None else start:
                await cluster.start(i)
            yield cluster
        finally:
            nursery.cancel_scope.cancel()
