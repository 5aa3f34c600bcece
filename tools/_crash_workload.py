"""The crash session's clients: concurrent Get / Put / Append, every call recorded.

Rules it keeps:
- Each client is its own task with its own connection pool and session, picking keys and
  operations from its own seeded random source; values are unique (client and count), so a
  lost, doubled or reordered append is visible in the history.
- Every call is recorded with its call and return times (`HistoryRecorder`, monotonic
  clock). A call that does not return within the per-op timeout is recorded as an unknown
  outcome and the client moves on (the client reuses its session with a higher sequence
  number, so the abandoned op can never be applied after a later one).
- Keys start with distinct characters, so they fall in distinct shards and spread over the
  groups; clients spread over all keys, so few writers share one key at a time.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import trio

from diskv_trio.client import Client, connect
from diskv_trio.net import Credentials
from diskv_trio.shardkv import key_to_shard
from diskv_trio.testing.linearizability import HistoryRecorder

Kind = Literal["get", "put", "append"]

OP_TIMEOUT_S = 8.0
"""Past this a call counts as an unknown outcome: a few client rounds (2 s per replica)."""

THINK_S_MAX = 0.03
"""Random pause between two ops of one client, to keep CPU use moderate on a shared machine."""

KIND_WEIGHTS: dict[str, float] = {"get": 0.4, "put": 0.15, "append": 0.45}
"""Mostly gets and appends: appends make every lost or repeated write visible in later gets."""

FINAL_READ_TIMEOUT_S = 30.0
"""After recovery every group must serve a Get within this long."""



def session_keys(count: int) -> list[str]:
    """`count` keys, the first ten in ten distinct shards."""
    return [f"{chr(ord('a') + i % 26)}{i // 26 or ''}-key" for i in range(count)]


def probe_key(shard: int) -> str:
    """A key of `shard` that the clients never write (capital first letter)."""
    first = next(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if key_to_shard(c) == shard)
    return f"{first}-probe"


@dataclass
class WorkloadStats:
    ok: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.ok.values()) + sum(self.unknown.values())


class Workload:
    """Runs `clients` concurrent clients until `stop` is called; records into `recorder`.

    Args:
        masters: shardmaster addresses.
        cluster_name: the cluster name the servers check.
        recorder: the history recorder shared by all clients.
        seed: the session seed (each client derives its own random source).
        clients: how many concurrent clients.
        keys: the keys they use.
        credentials: the cluster's keys (the clients use the client key).
    """

    def __init__(
        self,
        masters: list[str],
        cluster_name: str,
        recorder: HistoryRecorder,
        *,
        seed: int,
        clients: int,
        keys: list[str],
        credentials: Credentials | None = None,
    ) -> None:
        self.masters = masters
        self.credentials = credentials
        self.cluster_name = cluster_name
        self.recorder = recorder
        self.seed = seed
        self.clients = clients
        self.keys = keys
        self.stats = WorkloadStats()
        self._stop = trio.Event()

    def stop(self) -> None:
        """Ask every client to finish its current op and return."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(self.clients):
                await nursery.start(self._client, index)
            task_status.started()

    async def _client(self, index: int, *, task_status: trio.TaskStatus[None]) -> None:
        rng = random.Random(f"{self.seed}-client-{index}")
        async with connect(
            self.masters, cluster=self.cluster_name, credentials=self.credentials
        ) as kv:
            task_status.started()
            count = 0
            while not self._stop.is_set():
                count += 1
                key = rng.choice(self.keys)
                kind: Kind = rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]  # type: ignore[assignment]
                value = None if kind == "get" else f"{'p' if kind == 'put' else ''}{index}.{count};"
                await recorded_op(kv, self.recorder, index, kind, key, value, OP_TIMEOUT_S, self.stats)
                with trio.move_on_after(rng.uniform(0, THINK_S_MAX)):
                    await self._stop.wait()


async def recorded_op(
    kv: Client,
    recorder: HistoryRecorder,
    client_id: int,
    kind: Kind,
    key: str,
    value: str | None,
    timeout_s: float,
    stats: WorkloadStats,
) -> bool:
    """Run one op and record it; True if it returned, False if it timed out (unknown outcome)."""
    token = recorder.record_call(client_id, kind, key, value)
    output: str | None = None
    try:
        with trio.move_on_after(timeout_s) as scope:
            if kind == "get":
                output = await kv.get(key)
            elif kind == "put":
                assert value is not None
                await kv.put(key, value)
            else:
                assert value is not None
                await kv.append(key, value)
    except BaseException:
        recorder.record_unknown(token)
        raise
    if scope.cancelled_caught:
        recorder.record_unknown(token)
        stats.unknown[kind] += 1
        return False
    recorder.record_return(token, output)
    stats.ok[kind] += 1
    return True
