"""The default suite's budget of simulation seeds: each runs the whole cluster (shardmasters,
replica groups, clients) through its seed's faults and must pass every check.

How: fixed seeds, 20 simulated seconds of faults each; a failure prints its problems and the
command that replays it. `nox -s sim -- --seeds N` runs many more.
"""

from __future__ import annotations

import pytest

from diskv_trio.testing.cluster_sim import FAULT_KINDS, SimParams, run_simulation

SEEDS = range(100, 108)
SECONDS = 20.0


def test_the_budget_covers_every_kind_of_fault() -> None:
    kinds = {
        kind for seed in SEEDS for kind, weight in SimParams.draw(seed, SECONDS).weights if weight
    }
    assert kinds == set(FAULT_KINDS)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed(seed: int) -> None:
    params = SimParams.draw(seed, SECONDS)
    result = run_simulation(params)
    report = "\n".join([result.summary(), *result.problems, f"replay: {result.replay_command()}"])
    assert result.ok, report
    assert result.faults, report  # the nemesis did something
    assert result.ops > 0 and result.decided_instances > 0, report
