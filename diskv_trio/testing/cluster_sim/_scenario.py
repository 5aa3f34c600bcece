"""Scripted runs: the simulated cluster driven step by step by a test, not by a nemesis.

Rules kept here:
- A scenario gets the cluster with every server started (none joined yet) and an operator's
  shardmaster clerk; it drives configuration changes and network cuts itself and returns
  the problems it found. The run is as deterministic as a seeded one (same seams, same
  pinning), but a script does not depend on what a seed happens to draw, so it keeps
  reproducing one schedule while the servers' code changes around it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
import trio.testing

from diskv_trio import _entropy
from diskv_trio.kvproto import Sharding
from diskv_trio.net import Identity, Role, open_rpc_pool
from diskv_trio.shardmaster import ShardmasterClerk

from ._agreement import AgreementCheck
from ._cluster import CLUSTER_NAME, SimCluster, layout, running_cluster
from ._determinism import pinned
from ._trace import Trace

Scenario = Callable[[SimCluster, ShardmasterClerk], Awaitable[list[str]]]
"""The script: given the started cluster and the operator's clerk, returns problems."""

REPLICAS = 3


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """What a scripted run found (its problems and the agreement check's), and its digest."""

    problems: tuple[str, ...]
    digest: str
    sim_s: float


def run_scenario(scenario: Scenario, *, groups: int, shards: int, seed: int = 0) -> ScenarioResult:
    """Run `scenario` on a fresh cluster of `groups` replica groups (`shards` shards)."""
    trace = Trace()
    agreement = AgreementCheck()
    found: list[str] = []
    ended: list[float] = []

    async def main() -> None:
        _entropy.seed_run(f"cluster-sim-scenario-{seed}")
        rng = random.Random(f"cluster-sim-scenario-{seed}")
        specs = layout(groups, REPLICAS)
        async with running_cluster(specs, Sharding(shards), rng, trace, agreement) as cluster:
            operator = Identity(CLUSTER_NAME, Role.OPERATOR, "operator")
            transport = cluster.client_host("operator")
            async with open_rpc_pool(
                operator, credentials=cluster.credentials, transport=transport
            ) as pool:
                found.extend(await scenario(cluster, ShardmasterClerk(cluster.masters, pool)))
            found.extend(cluster.failures)
            ended.append(trio.current_time())

    with pinned(seed):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    problems = found + [f"agreement: {violation}" for violation in agreement.violations]
    return ScenarioResult(tuple(problems), trace.digest(), ended[0] if ended else 0.0)
