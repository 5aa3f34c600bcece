"""PaxosPeer over in-memory twins: MemoryStorage and a transport that calls the other peers'
handlers directly, as the server wires them (`paxos_handlers`, each call made under the
caller's authenticated node id, checked against `peer_ids`). Deterministic (autojump clock),
so it checks the driver's duties: replies only after sync, wait_decided, done propagation
and a restart from the synced records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from diskv_trio.net import ApplicationError
from diskv_trio.paxos import (
    PEER_ROLE,
    Fate,
    MemoryStorage,
    PaxosForgotten,
    PaxosPeer,
    PaxosUnreachable,
)
from diskv_trio.rsm._paxos_wiring import paxos_handlers


def node_id(i: int) -> str:
    return f"paxos-{i}"


@dataclass(frozen=True)
class Context:
    """What the net layer hands a handler: the method and the authenticated caller."""

    method: str
    peer_role: str
    peer_id: str


class DirectTransport:
    """Calls the target peer's handler in-process; `down` peers are unreachable."""

    def __init__(self, group: Group, me: int) -> None:
        self._group = group
        self._me = me

    async def call(
        self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float
    ) -> dict[str, Any]:
        target = self._group.peers[peer]
        if target is None or peer in self._group.down or self._me in self._group.down:
            await trio.lowlevel.checkpoint()
            raise PaxosUnreachable(f"peer {peer} is down")
        self._group.calls += 1
        handler = paxos_handlers(target)[method]
        try:
            with trio.fail_after(deadline_s):
                context: Any = Context(
                    method, PEER_ROLE, node_id(self._me)
                )  # a CallContext's fields
                return await handler(args, context)
        except ApplicationError as exc:  # the caller's RpcRemoteError, in the pool transport
            raise PaxosUnreachable(str(exc)) from exc


class Group:
    def __init__(self, nursery: trio.Nursery, n: int) -> None:
        self.nursery = nursery
        self.n = n
        self.storages = [MemoryStorage() for _ in range(n)]
        self.peers: list[PaxosPeer | None] = [None] * n
        self.scopes: list[trio.CancelScope | None] = [None] * n
        self.down: set[int] = set()
        self.calls = 0

    async def start(self, i: int, **kwargs: Any) -> PaxosPeer:
        peer = PaxosPeer(
            peer_count=self.n,
            me=i,
            storage=self.storages[i],
            transport=DirectTransport(self, i),
            rng=random.Random(i),
            peer_ids=tuple(node_id(j) for j in range(self.n)),
            **kwargs,
        )
        self.peers[i] = peer
        scope = trio.CancelScope()
        self.scopes[i] = scope

        async def run(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await peer.run(task_status=task_status)

        await self.nursery.start(run)
        return peer

    def crash(self, i: int) -> None:
        """Stop peer i; its storage keeps only what was synced."""
        scope = self.scopes[i]
        assert scope is not None
        scope.cancel()
        self.peers[i] = None
        storage = self.storages[i]
        del storage.records[storage.synced :]

    def peer(self, i: int) -> PaxosPeer:
        peer = self.peers[i]
        assert peer is not None
        return peer


async def test_agreement_and_wait_decided(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        g = Group(nursery, 3)
        for i in range(3):
            await g.start(i)
        g.peer(1).start(0, ("tuple", 1))
        values = [await g.peer(i).wait_decided(0) for i in range(3)]
        assert values == [["tuple", 1]] * 3  # values as every peer sees them after the wire
        assert g.calls == 6  # 2 prepares, 2 accepts, 2 decides: own acceptor called directly
        # Every promise and accept was synced before its reply.
        for storage in g.storages:
            kinds = [r["px"] for r in storage.records]
            assert "a" in kinds and storage.synced >= kinds.index("a") + 1
        nursery.cancel_scope.cancel()


async def test_idle_peers_send_nothing(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        g = Group(nursery, 3)
        for i in range(3):
            await g.start(i)
        g.peer(0).start(0, "x")
        await g.peer(0).wait_decided(0)
        await trio.testing.wait_all_tasks_blocked()
        before = g.calls
        await trio.sleep(60)
        assert g.calls == before
        nursery.cancel_scope.cancel()


async def test_done_reaches_peers_without_new_agreements(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        g = Group(nursery, 3)
        for i in range(3):
            await g.start(i)
        for seq in range(3):
            g.peer(0).start(seq, seq)
            await g.peer(0).wait_decided(seq)
        for i in range(3):
            await g.peer(i).wait_decided(2)
            g.peer(i).done(1)
        with trio.fail_after(1):
            for i in range(3):
                while g.peer(i).min() != 2:  # noqa: ASYNC110 - Min() has no change event
                    await trio.sleep(0.01)
        assert g.peer(0).status(1)[0] is Fate.FORGOTTEN
        with pytest.raises(PaxosForgotten):
            await g.peer(0).wait_decided(0)
        nursery.cancel_scope.cancel()


async def test_crash_keeps_synced_state_and_own_done_from_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        g = Group(nursery, 3)
        for i in range(3):
            await g.start(i)
        g.peer(0).start(0, "a")
        await g.peer(0).wait_decided(0)
        await g.peer(2).wait_decided(0)
        snapshot = g.peer(2).snapshot_state()
        g.storages[2].records.clear()
        g.storages[2].synced = 0
        g.peer(0).start(1, "b")
        await g.peer(2).wait_decided(1)
        g.peer(2).done(1)  # after the snapshot: not restored
        await g.peer(2).wait_voting()
        await trio.testing.wait_all_tasks_blocked()
        g.crash(2)
        restored = PaxosPeer.restore(snapshot, g.storages[2].records)
        p2 = await g.start(2, restored=restored)
        assert p2.is_voting
        assert p2.status(0) == (Fate.DECIDED, "a")
        assert p2.statistics()["done"] == -1
        p2.start(1, "noop")
        assert await p2.wait_decided(1) == "b"
        nursery.cancel_scope.cancel()


async def test_recovering_peer_votes_only_after_fence(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        g = Group(nursery, 3)
        for i in range(2):
            await g.start(i)
        g.peer(0).start(0, "a")
        await g.peer(0).wait_decided(0)
        g.down.add(1)
        p2 = await g.start(2, recovering=True)
        await trio.sleep(10)
        assert not p2.is_voting
        g.down.clear()
        with trio.fail_after(1):
            await p2.wait_voting()
        assert p2.statistics()["floor"] >= 0
        assert [r["px"] for r in g.storages[2].records][:1] == ["r"]
        nursery.cancel_scope.cancel()
