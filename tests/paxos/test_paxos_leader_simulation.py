"""Seeded simulation of the leader protocol: agreement, linearizable reads, liveness.

Each seed draws its parameters as the classic simulation does (3 or 5 peers, loss,
duplication, delay, crashes, disk losses, partitions); every peer runs elections and
heartbeats, clients send writes and reads mostly to the leader they were told of, and a
few classic `start(seq, v)` still run beside the leader. Checked throughout: one value per
instance, and every answered read includes every instance decided before it arrived; after
healing, a leader serves a write and a read in bounded time; at the end, the run's client
history passes the project's linearizability checker (`test_paxos_leader_history.py`). A failing seed replays with
`pytest tests/paxos/test_paxos_leader_simulation.py --paxos-seed SEED`.

The broken-rule tests run variants from `broken_rules.py` and require the checkers to catch
them (a stale read or a disagreement, never a mere liveness failure). The seed listed for
each is the first of 0..199 that catches it; the read holes the random runs rarely reach
are covered by the scripted schedules (`test_paxos_leader_schedules.py`).
"""

from __future__ import annotations

import pytest
from broken_rules import BROKEN
from test_paxos_simulation import _seeds

from diskv_trio.testing.paxos_sim import LeaderSimulation, SimulationFailure


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" in metafunc.fixturenames:
        metafunc.parametrize("sim_seed", _seeds(metafunc.config))


def test_random_leader_schedules_keep_agreement_and_reads(sim_seed: int) -> None:
    """One seed: faults, then healing; agreement and reads throughout, liveness at the end."""
    sim = LeaderSimulation(sim_seed)
    print(f"leader simulation {sim.describe()}")
    sim.run()
    assert sim.decisions, "the schedule decided nothing: the simulation is too weak to test"


def test_leader_runs_answer_reads_and_take_writes() -> None:
    """The simulation exercises what it checks: writes through leaders and answered reads."""
    answered = taken = 0
    for seed in range(5):
        sim = LeaderSimulation(seed)
        sim.run()
        taken += sim.writes_taken
        answered += sum(1 for r in sim.reads.values() if r.index is not None and r.index >= 0)
    assert taken > 100
    assert answered > 50


def test_same_seed_same_leader_run() -> None:
    first = LeaderSimulation(3)
    first.run()
    second = LeaderSimulation(3)
    second.run()
    assert first.decisions == second.decisions
    assert first.trace == second.trace


CAUGHT_AT = {
    "read-without-round": 1,
    "read-index-below-takeover": 3,
    "marks-any-ballot": 1,
    "range-omits-above": 3,
    "promises-at-floor": 143,
    "counts-uncovered-promises": 143,
}


@pytest.mark.parametrize("name", sorted(CAUGHT_AT))
def test_random_runs_catch_broken_rule(name: str) -> None:
    sim = LeaderSimulation(CAUGHT_AT[name], parts=BROKEN[name])
    with pytest.raises(SimulationFailure, match="stale read|agreement violated"):
        sim.run()


@pytest.mark.parametrize("name", sorted(CAUGHT_AT))
def test_same_seed_passes_with_rules_kept(name: str) -> None:
    LeaderSimulation(CAUGHT_AT[name]).run()
