"""How a server connects its Paxos peer to the network and its journal: the one wiring.

Rules kept here:
- Paxos methods are served to connections authenticated as role peer only (`PEERS`), and
  the peer binds each message's sender to the connection's node id (`peer_ids`).
- To Paxos, every failed call is `PaxosUnreachable`: no connection, a lost reply, a typed
  error from the callee, a refused hello. A request Paxos refuses (`PaxosProtocolError`)
  goes back to its caller as the typed error ``paxos.bad_request``.
- Paxos records share the server's journal (`ServerStorage`, tagged ``{"px": ...}``); a
  snapshot holds the Paxos state under ``"paxos"``.

`open_paxos_server` runs a Paxos peer alone on exactly these parts (the Paxos course suite
and `bench paxos`); a replica node (`_node.py`) adds its state machine to the same parts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from diskv_trio.net import (
    PEERS,
    ApplicationError,
    Credentials,
    Faults,
    Handler,
    HandshakeError,
    Identity,
    Role,
    RpcPool,
    RpcRemoteError,
    RpcServer,
    RpcUnavailable,
    open_rpc_pool,
)
from diskv_trio.paxos import PaxosPeer, PaxosProtocolError, PaxosRestoredState, PaxosUnreachable
from journal import Journal

from ._entry import NOOP
from ._storage import ServerStorage

BAD_REQUEST = "paxos.bad_request"
"""The error code a caller gets for a Paxos request the peer refused."""

COMPACTION_CHECK_S = 0.25
"""How often a Paxos-only server checks whether its journal wants a snapshot (local only)."""


class PoolTransport:
    """The Paxos transport over the node's RPC pool: peer index -> address."""

    def __init__(self, pool: RpcPool, addresses: Sequence[str]) -> None:
        self._pool = pool
        self._addresses = tuple(addresses)

    async def call(
        self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float
    ) -> dict[str, Any]:
        try:
            return await self._pool.call(self._addresses[peer], method, args, deadline_s=deadline_s)
        except (RpcUnavailable, RpcRemoteError, HandshakeError) as exc:
            raise PaxosUnreachable(f"peer {peer}: {exc}") from exc


def paxos_handlers(peer: PaxosPeer) -> dict[str, Handler]:
    """The peer's "paxos.*" methods for an RpcServer, refusals turned into typed errors."""

    def wrap(handler: Handler) -> Handler:
        async def handle(args: dict[str, Any], context: Any) -> dict[str, Any]:
            try:
                return await handler(args, context)
            except PaxosProtocolError as exc:
                raise ApplicationError(BAD_REQUEST, str(exc)) from exc

        return handle

    return {method: wrap(handler) for method, handler in peer.handlers().items()}


def new_paxos_peer(
    *,
    storage: ServerStorage,
    pool: RpcPool,
    addresses: Sequence[str],
    me: int,
    node_ids: Sequence[str],
    restored: PaxosRestoredState | None,
    recovering: bool,
    leader_mode: bool = False,
    lease_s: float | None = None,
) -> PaxosPeer:
    """The group member at `addresses[me]`, journalling in `storage`, calling through `pool`.

    Must be called from Trio (the peer reads the clock).
    """
    return PaxosPeer(
        peer_count=len(addresses),
        me=me,
        storage=storage,
        transport=PoolTransport(pool, addresses),
        restored=restored,
        recovering=recovering,
        peer_ids=tuple(node_ids),
        leader_mode=leader_mode,
        lease_s=lease_s,
        noop=NOOP,
    )


def restore_paxos(storage: ServerStorage) -> PaxosRestoredState:
    """The Paxos state a freshly opened journal holds (its snapshot, then its records)."""
    state = storage.loaded_state() or {}
    return PaxosPeer.restore(state.get("paxos"), storage.paxos_records())


class PaxosServer:
    """What `open_paxos_server` yields: the peer, its journal, RPC server and fault settings."""

    def __init__(
        self, peer: PaxosPeer, storage: ServerStorage, server: RpcServer, faults: Faults
    ) -> None:
        self.peer = peer
        self.storage = storage
        self.server = server
        self.faults = faults

    async def snapshot(self) -> None:
        """Write a snapshot of the live Paxos state; the journal drops what it covers."""
        await self.storage.snapshot({"paxos": self.peer.snapshot_state()})

    async def _compaction_loop(self) -> None:
        journal = self.storage.journal
        last_seen = journal.last_lsn
        while True:
            await trio.sleep(COMPACTION_CHECK_S)
            idle = journal.last_lsn == last_seen
            last_seen = journal.last_lsn
            if self.storage.should_compact(idle=idle):
                await self.snapshot()
                last_seen = journal.last_lsn


@asynccontextmanager
async def open_paxos_server(
    addresses: Sequence[str],
    me: int,
    node_ids: Sequence[str],
    directory: str | os.PathLike[str],
    *,
    cluster: str,
    credentials: Credentials | None = None,
    faults: Faults | None = None,
    recovering: bool = False,
) -> AsyncIterator[PaxosServer]:
    """Serve the Paxos peer `me` of a group on its own journal directory until exit.

    Args:
        addresses: every peer's address (``unix:/path`` or ``HOST:PORT``), by index.
        me: this peer's index.
        node_ids: every peer's node id, by index: its identity on the wire, what
            `faults.cut` names, and what the peer checks a request's sender against.
        directory: the journal directory (created if missing).
        cluster: the cluster name in the hello.
        credentials: the keys (the peer key proves the role); None for an open cluster.
        faults: fault injection shared by this server and its pool.
        recovering: the directory was lost: rejoin through the fence before voting.
    """
    faults = faults if faults is not None else Faults()
    with Journal.open(directory) as journal:
        storage = ServerStorage(journal)
        restored = restore_paxos(storage)
        identity = Identity(cluster, Role.PEER, node_ids[me])
        async with open_rpc_pool(identity, credentials=credentials, faults=faults) as pool:
            peer = new_paxos_peer(
                storage=storage,
                pool=pool,
                addresses=addresses,
                me=me,
                node_ids=node_ids,
                restored=restored,
                recovering=recovering,
            )
            server = RpcServer(
                addresses[me],
                identity,
                paxos_handlers(peer),
                roles=PEERS,
                credentials=credentials,
                faults=faults,
            )
            node = PaxosServer(peer, storage, server, faults)
            async with trio.open_nursery() as nursery:
                await nursery.start(peer.run)
                await nursery.start(server.serve)
                nursery.start_soon(node._compaction_loop)
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
