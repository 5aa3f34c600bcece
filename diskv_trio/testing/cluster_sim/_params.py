"""What one simulation run does, drawn from its seed: the cluster's size, the clients, how
often each kind of fault comes, and the run's phases.

Rules kept here:
- The seed alone fixes a run (with the fault phase's length, `--seconds`): `SimParams.draw`
  is the only place that turns a seed into choices, so a replay needs nothing else.
- Every kind of fault has a weight; some seeds leave some kinds out, so a failure tends to
  come from fewer kinds at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS: tuple[str, ...] = (
    "crash",
    "power_loss",
    "lose_disk",
    "lose_disk_twice",
    "slow_disk",
    "partition",
    "isolate",
    "slow_links",
    "lossy_links",
    "move",
    "leave_join",
)
"""The nemesis's faults (see `_nemesis`)."""

SECONDS_DEFAULT = 30.0
"""Simulated seconds of the fault phase, unless told otherwise."""


@dataclass(frozen=True, slots=True)
class SimParams:
    """One run's choices.

    Attributes:
        seed: the run's seed.
        fault_s: simulated seconds of the fault phase (clients run and faults come).
        groups: shardkv replica groups (3 replicas each).
        shards: shards of the cluster.
        clients: concurrent clients.
        keys: keys the clients use.
        op_timeout_s: a client op not done in this long is an unknown outcome.
        fault_actors: faults that may be under way at once.
        fault_gap_s_max: longest pause between two faults of one actor.
        weights: each fault kind's weight (0: never).
    """

    seed: int
    fault_s: float
    groups: int
    shards: int
    clients: int
    keys: int
    op_timeout_s: float
    fault_actors: int
    fault_gap_s_max: float
    weights: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        unknown = {kind for kind, _ in self.weights} - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        if self.fault_s <= 0 or self.groups < 1 or self.clients < 1 or self.keys < 1:
            raise ValueError("fault_s, groups, clients and keys must be positive")

    @classmethod
    def draw(cls, seed: int, fault_s: float = SECONDS_DEFAULT) -> SimParams:
        """The choices seed `seed` stands for."""
        rng = random.Random(f"cluster-sim-params-{seed}")
        weights = []
        for kind in FAULT_KINDS:
            weight = rng.choice((0.0, 1.0, 2.0, 3.0)) if rng.random() < 0.8 else 0.0
            weights.append((kind, weight))
        if not any(weight for _, weight in weights):
            index = rng.randrange(len(weights))
            weights[index] = (weights[index][0], 1.0)
        return cls(
            seed=seed,
            fault_s=fault_s,
            groups=rng.choice((1, 2, 2, 3)),
            shards=rng.choice((6, 12, 30)),
            clients=rng.randint(2, 5),
            keys=rng.randint(3, 10),
            op_timeout_s=rng.choice((2.0, 5.0, 10.0)),
            fault_actors=rng.randint(1, 3),
            fault_gap_s_max=rng.choice((0.5, 2.0, 5.0)),
            weights=tuple(weights),
        )

    def describe(self) -> str:
        kinds = ",".join(f"{kind}={weight:g}" for kind, weight in self.weights if weight)
        return (
            f"seed={self.seed} fault_s={self.fault_s:g} groups={self.groups} shards={self.shards}"
            f" clients={self.clients} keys={self.keys} op_timeout_s={self.op_timeout_s:g}"
            f" actors={self.fault_actors}"
            f" gap_s<={self.fault_gap_s_max:g} faults[{kinds}]"
        )
