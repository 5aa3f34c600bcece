"""The end of a run: heal, then check liveness, durability and that replicas agree.

Rules kept here:
- Liveness once healed: within `HEAL_DEADLINE_S` of simulated time every server serves,
  intact (a lost disk recovered), every group owns a shard (one is moved to it if the moves
  left it none) and serves a Get through it, and every key is read.
- Every acknowledged write is readable after healing: the final Get of every key is
  recorded in the history, so the linearizability check compares it with every write
  acknowledged before it (a lost write makes the history illegal).
- Replicas agree on their state: once a group's replicas have applied the same instance,
  their state machines' snapshots are equal (compared at one instant, no await between).
  With the agreement check on the journals (`_agreement`), this covers every instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import cbor2
import trio

from diskv_trio.client import Client
from diskv_trio.kvproto import Sharding
from diskv_trio.shardmaster import Config, ShardmasterClerk
from diskv_trio.testing.linearizability import HistoryRecorder

from ._cluster import SimCluster, SimServer
from ._workload import FINAL_READ_TIMEOUT_S, WorkloadStats, recorded_op

HEAL_DEADLINE_S = 60.0
"""After healing, every server must serve again, intact, within this long."""

CONVERGE_DEADLINE_S = 30.0
"""After the final reads, each group's replicas must reach the same applied instance."""

SAMPLE_S = 0.1
"""How often the end checks look at the servers (simulated time)."""

PROBE_TRIES_MAX = 1_000_000
"""Candidate probe keys tried per shard."""


async def wait_until(predicate: Callable[[], bool], interval_s: float = SAMPLE_S) -> None:
    """Return once `predicate()` holds, looking every `interval_s` of simulated time.

    Sampled rather than signalled: a node says "recovering" with a plain flag, and sampling
    in simulated time costs nothing real while every task waits.
    """
    while True:
        if predicate():
            return
        await trio.sleep(interval_s)


def probe_key(shard: int, sharding: Sharding) -> str:
    """A key of `shard` that the clients never write."""
    for n in range(PROBE_TRIES_MAX):
        key = f"probe-{n}"
        if sharding.shard_of(key.encode()) == shard:
            return key
    raise AssertionError(f"no probe key found for shard {shard}")


def state_digest(server: SimServer) -> tuple[int, str] | None:
    """(applied instance, digest of the state machine's snapshot), None when not running."""
    node = server.node
    if node is None or not server.running or node.rsm is None:
        return None
    rsm = node.rsm
    data = cbor2.dumps(rsm.machine.snapshot(), canonical=True)
    return rsm.applied, hashlib.blake2b(data, digest_size=16).hexdigest()


async def wait_all_serving(cluster: SimCluster, problems: list[str]) -> bool:
    """Every server serving and intact within `HEAL_DEADLINE_S`."""
    with trio.move_on_after(HEAL_DEADLINE_S):
        await wait_until(lambda: all(server.serving for server in cluster.servers.values()))
        return True
    for name, server in cluster.servers.items():
        if not server.serving:
            state = (
                "down"
                if not server.running
                else "recovering"
                if server.node and server.node.recovering
                else "not serving"
            )
            problems.append(f"liveness: {name} is {state} {HEAL_DEADLINE_S:g} s after healing")
    return False


async def give_every_group_a_shard(
    clerk: ShardmasterClerk, gids: list[int], problems: list[str]
) -> Config | None:
    """Move a shard to every group the moves left without one; the config afterwards."""
    with trio.move_on_after(HEAL_DEADLINE_S):
        config = await clerk.query(-1)
        shards = list(config.shards)
        for gid in gids:
            if gid not in shards:
                richest = max(set(shards), key=lambda g: (shards.count(g), g))
                shard = shards.index(richest)
                await clerk.move(shard, gid)
                shards[shard] = gid
        return await clerk.query(-1)
    problems.append(
        f"liveness: the shardmasters did not answer within {HEAL_DEADLINE_S:g} s of healing"
    )
    return None


async def final_reads(
    kv: Client,
    recorder: HistoryRecorder,
    client_id: int,
    keys: list[str],
    stats: WorkloadStats,
    problems: list[str],
) -> None:
    """A recorded Get of every key (and probe key), all at once; one that does not return
    within `FINAL_READ_TIMEOUT_S` is a liveness problem."""

    async def read(key: str) -> None:
        returned, _ = await recorded_op(
            kv, recorder, client_id, "get", key, None, FINAL_READ_TIMEOUT_S, stats
        )
        if not returned:
            problems.append(
                f"liveness: the final Get of {key!r} did not return within {FINAL_READ_TIMEOUT_S:g} s"
            )

    async with trio.open_nursery() as nursery:
        for key in keys:
            nursery.start_soon(read, key)


def describe_groups(cluster: SimCluster) -> str:
    """Where each group stands (its first running replica's view), for a liveness report."""
    lines = []
    for gid in cluster.gids:
        views = [
            s.node.rsm.machine for s in cluster.group(gid) if s.running and s.node and s.node.rsm
        ]
        describe = getattr(views[0], "describe", None) if views else None
        lines.append(f"group {gid}: {describe() if callable(describe) else 'no replica running'}")
    return "\n".join(lines)


def probe_keys(config: Config) -> Iterator[str]:
    """One never-written key in a shard of each group."""
    for gid in sorted(set(config.shards) - {0}):
        yield probe_key(config.shards.index(gid), config.sharding)


async def check_convergence(cluster: SimCluster, problems: list[str]) -> None:
    """Each group's replicas reach one applied instance, and there their states are equal."""
    for gid in [0, *cluster.gids]:
        group = cluster.group(gid)
        with trio.move_on_after(CONVERGE_DEADLINE_S):
            while True:
                states = {server.spec.name: state_digest(server) for server in group}
                applied = {state[0] for state in states.values() if state is not None}
                if None not in states.values() and len(applied) == 1:
                    digests = {
                        name: state[1] for name, state in states.items() if state is not None
                    }
                    if len(set(digests.values())) > 1:
                        problems.append(
                            f"replicas diverge: group {gid} at instance {applied.pop()}: {digests}"
                        )
                    break
                await trio.sleep(SAMPLE_S)
            continue
        problems.append(
            f"liveness: group {gid}'s replicas did not reach one applied instance in"
            f" {CONVERGE_DEADLINE_S:g} s: {states}"
        )
