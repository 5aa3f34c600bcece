"""The crash session's clients: concurrent Get / Put / Append / Delete / compare-and-set,
every call recorded.

Rules it keeps:
- Each client is its own task with its own connection pool and session, picking keys and
  operations from its own seeded random source; values are unique (client and count), so a
  lost, doubled or reordered append is visible in the history.
- Every call is recorded with its call and return times (`HistoryRecorder`, monotonic
  clock). A call that does not return within the per-op timeout is recorded as an unknown
  outcome and the client moves on (the client reuses its session with a higher sequence
  number, so the abandoned op can never be applied after a later one).
- Keys spread over the shards by the cluster's own sharding (crc32c); clients spread over
  all keys, so few writers share one key at a time.
- A compare-and-set expects what this client last read of the key (or absent), so it
  often writes and sometimes loses a race; deletes are rare, so values keep growing and a
  lost or doubled append stays visible.
"""

from __future__ import annotations

import random

import trio

from diskv_trio.client import Client, connect
from diskv_trio.kvproto import Sharding
from diskv_trio.net import Credentials
from diskv_trio.testing.linearizability import HistoryRecorder
from diskv_trio.testing.recorded_ops import Kind, WorkloadStats
from diskv_trio.testing.recorded_ops import recorded_op as run_recorded_op

OP_TIMEOUT_S = 8.0
"""Past this a call counts as an unknown outcome: a few client rounds (2 s per replica)."""

THINK_S_MAX = 0.03
"""Random pause between two ops of one client, to keep CPU use moderate on a shared machine."""

KIND_WEIGHTS: dict[str, float] = {
    "get": 0.35,
    "put": 0.1,
    "append": 0.4,
    "delete": 0.03,
    "cas": 0.12,
}
"""Mostly gets and appends: appends make every lost or repeated write visible in later gets."""

PROBE_TRIES_MAX = 1_000_000
"""Candidate probe keys tried per shard: each shard of a few thousand gets one in a few
thousand tries on average."""

FINAL_READ_TIMEOUT_S = 30.0
"""After recovery every group must serve a Get within this long."""


def session_keys(count: int) -> list[str]:
    """`count` keys; the cluster's sharding spreads them over its shards."""
    return [f"key-{i}" for i in range(count)]


def probe_key(shard: int, sharding: Sharding) -> str:
    """A key of `shard` that the clients never write."""
    for n in range(PROBE_TRIES_MAX):
        key = f"probe-{n}"
        if sharding.shard_of(key.encode()) == shard:
            return key
    raise AssertionError(f"no probe key found for shard {shard}")


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
            last_read: dict[str, str | None] = {}
            while not self._stop.is_set():
                count += 1
                key = rng.choice(self.keys)
                kind: Kind = rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]  # type: ignore[assignment]
                prefix = {"put": "p", "cas": "c"}.get(kind, "")
                value = None if kind in ("get", "delete") else f"{prefix}{index}.{count};"
                expected = last_read.get(key) if kind == "cas" else None
                read: list[str | None] = []
                await recorded_op(
                    kv,
                    self.recorder,
                    index,
                    kind,
                    key,
                    value,
                    OP_TIMEOUT_S,
                    self.stats,
                    expected=expected,
                    read=read,
                )
                if read:
                    last_read[key] = read[0]
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
    *,
    expected: str | None = None,
    read: list[str | None] | None = None,
) -> bool:
    """`diskv_trio.testing.recorded_ops.recorded_op`; True if it returned, False if it timed
    out (unknown outcome). A get's value (None: absent) is also appended to `read` when given.
    """
    returned, output = await run_recorded_op(
        kv, recorder, client_id, kind, key, value, timeout_s, stats, expected=expected
    )
    if returned and kind == "get" and read is not None:
        read.append(output if isinstance(output, str) else None)
    return returned
