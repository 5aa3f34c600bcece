"""The simulated clients: the real `diskv_trio.client.Client`, each on its own machine,
running seeded random ops; every call recorded for the linearizability check.

Rules kept here:
- Each client has its own pool (its own connections, from its own host, so a partition can
  cut it off) and its own seeded random source; values are unique (client and count), so a
  lost, doubled or reordered write shows in the history.
- Few keys, so clients collide on them and the history constrains the order of their ops.
- Times are `trio.current_time()`: the recorder uses the run's (simulated) clock.
- A call that does not return within the seed's op timeout is an unknown outcome, and the client
  goes on with its next op (its session moves on, so the abandoned op can never be
  applied after a later one).
"""

from __future__ import annotations

import random

import trio

from diskv_trio.client import Client
from diskv_trio.net import Identity, Role, open_rpc_pool
from diskv_trio.testing.linearizability import HistoryRecorder
from diskv_trio.testing.recorded_ops import Kind, WorkloadStats, recorded_op

from ._cluster import CLUSTER_NAME, SimCluster

THINK_S_MAX = 0.2
"""Longest pause between two ops of one client."""

KIND_WEIGHTS: dict[Kind, float] = {
    "get": 0.35,
    "put": 0.1,
    "append": 0.4,
    "delete": 0.03,
    "cas": 0.12,
}
"""Mostly gets and appends: an append makes every lost or repeated write visible later."""

FINAL_READ_TIMEOUT_S = 30.0
"""After healing, every key must be read within this long."""


class Workload:
    """`clients` concurrent clients until `stop()`; every call goes into `recorder`."""

    def __init__(
        self,
        cluster: SimCluster,
        recorder: HistoryRecorder,
        rng: random.Random,
        *,
        clients: int,
        keys: list[str],
        op_timeout_s: float,
    ) -> None:
        self._cluster = cluster
        self.recorder = recorder
        self._seeds = [rng.getrandbits(64) for _ in range(clients)]
        self.keys = keys
        self._op_timeout_s = op_timeout_s
        self.stats = WorkloadStats()
        self._stop = trio.Event()
        self.hosts = [f"client-{index}" for index in range(clients)]

    def stop(self) -> None:
        """Each client finishes its current op and returns."""
        self._stop.set()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for index in range(len(self._seeds)):
                nursery.start_soon(self._client, index)

    async def _client(self, index: int) -> None:
        rng = random.Random(self._seeds[index])
        transport = self._cluster.client_host(self.hosts[index])
        identity = Identity(CLUSTER_NAME, Role.CLIENT, self.hosts[index])
        kinds = list(KIND_WEIGHTS)
        weights = list(KIND_WEIGHTS.values())
        async with open_rpc_pool(
            identity, credentials=self._cluster.credentials, transport=transport
        ) as pool:
            kv = Client(self._cluster.masters, pool)
            count = 0
            last_read: dict[str, str | None] = {}
            while not self._stop.is_set():
                count += 1
                key = rng.choice(self.keys)
                kind = rng.choices(kinds, weights)[0]
                prefix = {"put": "p", "cas": "c"}.get(kind, "")
                value = None if kind in ("get", "delete") else f"{prefix}{index}.{count};"
                expected = last_read.get(key) if kind == "cas" else None
                returned, output = await recorded_op(
                    kv,
                    self.recorder,
                    index,
                    kind,
                    key,
                    value,
                    self._op_timeout_s,
                    self.stats,
                    expected=expected,
                )
                if returned and kind == "get":
                    assert output is None or isinstance(output, str)
                    last_read[key] = output
                with trio.move_on_after(rng.uniform(0, THINK_S_MAX)):
                    await self._stop.wait()
