"""`open_paxos_node`: a Paxos peer with its own journal directory, RpcServer and RpcPool.

For tests and simple use. A server process embeds `PaxosPeer` in its own journal and
RpcServer instead. Restart = leave the context and open it again on the same directory;
disk loss = empty the directory and open with `recovering=True`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cbor2
import trio

from diskv_trio.net import (
    PEERS,
    Faults,
    HandshakeError,
    Identity,
    Role,
    RpcPool,
    RpcRemoteError,
    RpcServer,
    RpcUnavailable,
    open_rpc_pool,
)
from journal import GroupCommit, Journal

from ._core import is_paxos_record
from ._errors import PaxosUnreachable
from ._peer import PaxosPeer

CLUSTER_DEFAULT = "paxos"
ROLE = Role.PEER

# How often the node checks whether its journal wants a snapshot (a local check only).
compaction_check_interval_s = 0.25


class JournalStorage:
    """`PaxosStorage` over a `journal.Journal`: records are CBOR maps, syncs are group commits."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.group_commit = GroupCommit(journal)

    def append(self, record: dict[str, Any]) -> None:
        self.journal.append(cbor2.dumps(record))

    async def sync(self) -> None:
        await self.group_commit.sync()


class PoolTransport:
    """`PaxosTransport` over an RpcPool: peer index -> address, failures -> PaxosUnreachable."""

    def __init__(self, pool: RpcPool, peers: list[str]) -> None:
        self._pool = pool
        self._peers = peers

    async def call(
        self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float
    ) -> dict[str, Any]:
        try:
            return await self._pool.call(self._peers[peer], method, args, deadline_s=deadline_s)
        except (RpcUnavailable, RpcRemoteError, HandshakeError) as exc:
            raise PaxosUnreachable(f"peer {peer}: {exc}") from exc


class PaxosNode:
    """What `open_paxos_node` yields: the peer, its journal, server and fault settings."""

    def __init__(
        self, peer: PaxosPeer, storage: JournalStorage, server: RpcServer, faults: Faults
    ) -> None:
        self.peer = peer
        self.storage = storage
        self.server = server
        self.faults = faults
        self.snapshot_count = 0

    async def snapshot(self) -> None:
        """Write a snapshot of the live Paxos state; the journal drops what it covers."""
        journal = self.storage.journal
        state = cbor2.dumps(self.peer.snapshot_state())
        upto = journal.last_lsn  # taken with the state, no await in between
        await self.storage.group_commit.snapshot(state, upto)
        self.snapshot_count += 1

    async def _compaction_loop(self) -> None:
        journal = self.storage.journal
        last_seen = journal.last_lsn
        while True:
            await trio.sleep(compaction_check_interval_s)
            idle = journal.last_lsn == last_seen
            last_seen = journal.last_lsn
            if journal.should_compact(idle=idle):
                await self.snapshot()
                last_seen = journal.last_lsn


def read_journal(journal: Journal) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Paxos snapshot state and records a freshly opened journal replayed."""
    snapshot_state = None
    if journal.loaded_snapshot is not None:
        snapshot_state = cbor2.loads(journal.loaded_snapshot[1])
    records = []
    for _, payload in journal:
        record = cbor2.loads(payload)
        if is_paxos_record(record):
            records.append(record)
    return snapshot_state, records


@asynccontextmanager
async def open_paxos_node(
    peers: list[str],
    me: int,
    directory: str | os.PathLike[str],
    *,
    faults: Faults | None = None,
    recovering: bool = False,
    cluster: str = CLUSTER_DEFAULT,
) -> AsyncIterator[PaxosNode]:
    """Open the journal in `directory` (restoring from it), serve the peer at `peers[me]`
    over its own RpcServer with an RpcPool transport, and close everything on exit.

    Node ids on the wire are `str(index)`, so `faults.cut = {"0", "2"}` cuts peers 0 and 2.

    Args:
        peers: every peer's address (``unix:/path`` or ``HOST:PORT``).
        me: this peer's index.
        directory: the journal directory (created if missing).
        faults: fault injection shared by this node's server and pool.
        recovering: the directory was lost: rejoin through the fence before voting.
    """
    faults = faults if faults is not None else Faults()
    journal = Journal.open(directory)
    try:
        snapshot_state, records = read_journal(journal)
        restored = PaxosPeer.restore(snapshot_state, records) if snapshot_state or records else None
        storage = JournalStorage(journal)
        identity = Identity(cluster, ROLE, str(me))
        async with open_rpc_pool(identity, faults=faults) as pool:
            peer = PaxosPeer(
                peer_count=len(peers),
                me=me,
                storage=storage,
                transport=PoolTransport(pool, peers),
                restored=restored,
                recovering=recovering,
            )
            server = RpcServer(peers[me], identity, peer.handlers(), roles=PEERS, faults=faults)
            node = PaxosNode(peer, storage, server, faults)
            async with trio.open_nursery() as nursery:
                await nursery.start(peer.run)
                await nursery.start(server.serve)
                nursery.start_soon(node._compaction_loop)
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        journal.close()
