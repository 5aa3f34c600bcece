"""A peer refuses requests naming instances far ahead of it, and requests from non-peers.

Each test drives the "paxos.*" handler as a server wires it (`rsm`'s `paxos_handlers`) with
the wire form of a request and a call context as the net layer builds it, then checks the refusal is the typed
``paxos.bad_request`` error, that nothing was journalled and that `max()` did not move; the
catch-up paths (a lagging peer learning through its own proposals) are shown to still work.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from diskv_trio.net import ApplicationError
from diskv_trio.paxos import Ballot, Fate, MemoryStorage, PaxosCore, PaxosPeer
from diskv_trio.paxos._limits import INSTANCE_AHEAD_MAX
from diskv_trio.paxos._messages import Accept, Decide, EpochNotice, Fence, Prepare
from diskv_trio.rsm._paxos_wiring import BAD_REQUEST, paxos_handlers

IDS = ("shardkv-1-0", "shardkv-1-1", "shardkv-1-2")


@dataclass(frozen=True)
class Context:
    """What the net layer hands a handler: the method and the authenticated caller."""

    method: str
    peer_role: str
    peer_id: str


class NoTransport:
    async def call(self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float) -> Any:
        raise AssertionError("no calls expected")


def make_peer(*, peer_ids: tuple[str, ...] | None = IDS) -> tuple[PaxosPeer, MemoryStorage]:
    storage = MemoryStorage()
    peer = PaxosPeer(
        peer_count=3,
        me=0,
        storage=storage,
        transport=NoTransport(),
        rng=random.Random(0),
        peer_ids=peer_ids,
    )
    return peer, storage


def ctx(msg: Any, *, role: str = "peer", node: str = IDS[1]) -> Context:
    return Context(f"paxos.{msg.KIND}", role, node)


async def serve(peer: PaxosPeer, wire: dict[str, Any], context: Any) -> dict[str, Any]:
    """The request as a server runs it: through the wiring's handler for its method."""
    method = context.method if context is not None else f"paxos.{wire['k']}"
    return await paxos_handlers(peer)[method](wire, context)


async def refused(peer: PaxosPeer, msg: Any, context: Any) -> str:
    with pytest.raises(ApplicationError) as info:
        await serve(peer, msg.to_wire(), context)
    assert info.value.code == BAD_REQUEST == "paxos.bad_request"
    return str(info.value.message)


async def test_forged_decide_far_ahead_is_refused_and_changes_nothing() -> None:
    peer, storage = make_peer()
    before = len(storage.records)
    msg = Decide(1, -1, 10**15, {"ops": 5})
    assert "too far ahead" in await refused(peer, msg, ctx(msg))
    assert peer.max() == -1
    assert len(storage.records) == before
    assert peer.status(10**15)[0] == Fate.PENDING


@pytest.mark.parametrize("kind", ["prepare", "accept", "decide"])
async def test_every_instance_request_is_bounded_relative_to_what_the_receiver_knows(
    kind: str,
) -> None:
    peer, _ = make_peer()
    peer.start(41, "known")  # the receiver now knows instance 41
    limit = 41 + INSTANCE_AHEAD_MAX
    ballot = Ballot(0, 1, 1)

    def build(seq: int) -> Any:
        if kind == "prepare":
            return Prepare(1, -1, seq, ballot)
        if kind == "accept":
            return Accept(1, -1, seq, ballot, "v")
        return Decide(1, -1, seq, "v")

    await refused(peer, build(limit + 1), ctx(build(limit + 1)))
    assert peer.max() == 41
    reply = await serve(peer, build(limit).to_wire(), ctx(build(limit)))
    assert reply["src"] == 0  # served: the bound is inclusive
    assert peer.max() == limit


async def test_lagging_peer_learns_far_instance_through_its_own_proposal() -> None:
    """Refusing a far decide must not strand a peer: a local start (the replica's progress
    probe) raises max() at once, and the same decide is then served."""
    peer, _ = make_peer()
    far = 5 * INSTANCE_AHEAD_MAX
    msg = Decide(1, -1, far, "v")
    await refused(peer, msg, ctx(msg))
    peer.start(far - 1, {"noop": True})  # what the progress probe does
    await serve(peer, msg.to_wire(), ctx(msg))
    assert peer.status(far) == (Fate.DECIDED, "v")


@pytest.mark.parametrize(
    "role, node, src",
    [
        ("client", IDS[1], 1),  # a client pretending to be a peer
        ("operator", IDS[1], 1),  # operators do not vote either
        ("peer", "shardkv-2-1", 1),  # a peer of another group
        ("peer", IDS[2], 1),  # a real peer claiming another peer's index
    ],
)
async def test_requests_from_anyone_but_the_named_peer_are_refused(
    role: str, node: str, src: int
) -> None:
    peer, storage = make_peer()
    before = len(storage.records)
    for msg in [
        Decide(src, -1, 3, "v"),
        Prepare(src, -1, 3, Ballot(0, 1, src)),
        Accept(src, -1, 3, Ballot(0, 1, src), "v"),
        Fence(src, -1, 10**6, 7),  # an epoch from a non-peer would block every ballot
        EpochNotice(src, -1, 10**6),
    ]:
        await refused(peer, msg, ctx(msg, role=role, node=node))
    assert len(storage.records) == before
    assert peer.max() == -1
    assert peer.statistics()["epoch_threshold"] == 0


async def test_the_named_peer_is_served() -> None:
    peer, _ = make_peer()
    msg = Fence(2, -1, 5, 7)
    reply = await serve(peer, msg.to_wire(), ctx(msg, node=IDS[2]))
    assert reply["k"] == "fence_ack"
    assert peer.statistics()["epoch_threshold"] == 5


async def test_without_peer_ids_src_is_trusted() -> None:
    peer, _ = make_peer(peer_ids=None)
    msg = Decide(2, -1, 3, "v")
    await serve(peer, msg.to_wire(), None)
    assert peer.status(3) == (Fate.DECIDED, "v")


def test_peer_ids_must_name_every_peer_once() -> None:
    async def build(ids: tuple[str, ...]) -> None:
        make_peer(peer_ids=ids)

    for ids in [IDS[:2], (IDS[0], IDS[0], IDS[1])]:
        with pytest.raises(ValueError):
            trio.run(build, ids)


def test_core_refuses_far_instances_before_touching_state() -> None:
    """The bound is in the sans-I/O core, so the simulation keeps it too."""
    core = PaxosCore(peer_count=3, me=0, rng=random.Random(0), boot_id=1)
    core.boot(0.0)
    with pytest.raises(Exception, match="too far ahead"):
        core.on_request(Decide(1, 10**14, INSTANCE_AHEAD_MAX + 1, "v"), 0.0)
    assert core.max() == -1
    assert core.statistics()["min"] == 0
