"""The leader simulation's client history, judged by the project's linearizability checker.

Every leader simulation run records its writes and reads as a client history (the applied
log and one register per instance; `diskv_trio/testing/paxos_sim/_history.py`) and checks
it with the checker the crash sessions use. These tests show it bites: with the
simulation's own stale-read check off, the checker alone catches every broken read rule at
its seed (`CAUGHT_AT`) or scripted schedule, and the same seeds and schedules pass with the
rules kept. They also map each deliberately broken rule the design lists to its variant
(`broken_rules.py`) and to the run that catches it.
"""

from __future__ import annotations

import pytest
from broken_rules import BROKEN
from test_paxos_leader_schedules import SCHEDULES, run_schedule
from test_paxos_leader_simulation import CAUGHT_AT

from diskv_trio.paxos._parts import DEFAULT_PARTS
from diskv_trio.testing.linearizability import Verdict
from diskv_trio.testing.paxos_sim import LeaderSimulation, SimulationFailure

CHECKER_VERDICT = r"client history not linearizable \(checker verdict: illegal"
CAUGHT = "stale read|agreement violated"

READ_RULES = ("read-without-round", "read-index-below-takeover")  # random seeds reach them
READ_SCHEDULES = (  # the spec's schedules whose violation is a read (the other: agreement)
    "lease-no-boot-wait",
    "lease-own-acceptor-not-honouring",
    "readindex-counts-itself-unchecked",
    "takeover-read-as-written",
)

# More scripted schedules in the notation of `test_paxos_leader_schedules.py`:
# name -> (broken variant, leases on, steps).
EXTRA_SCHEDULES: dict[str, tuple[str, bool, str]] = {
    # Peer 0 holds a lease granted by 0 and 1; peer 1 promises peer 2 anyway, 2 takes over
    # and decides instance 0, and 0 still answers a read from its lease without it.
    "lease-grant-not-honoured": (
        "lease-grant-not-honoured",
        True,
        """elect 0; dlv P 0->0; dlv P 0->1; dlv p 0->0; dlv p 1->0; hb 0; dlv H 0->1;
        dlv h 1->0; read 0; elect 2; dlv P 2->1; dlv P 2->2; dlv p 1->2; dlv p 2->2;
        prop 2; dlv A 2->1; dlv A 2->2; dlv a 1->2; dlv a 2->2; read 0""",
    ),
}

# Each deliberately broken rule of the design, and the variant that breaks it.
ISSUE_RULES = {
    "answering a read without the confirmation round": "read-without-round",
    "a read index below the takeover's highest reported instance": "read-index-below-takeover",
    "a leader counting itself in a read round after promising higher": "counts-itself-unchecked",
    "'chosen up to c' covering an instance the leader cannot know chosen at its ballot": (
        "chosen-is-commit-index"
    ),
    "marking an instance decided from 'chosen up to c' whatever its accepted ballot": (
        "marks-any-ballot"
    ),
    "promising at or below the floor after a disk loss": "promises-at-floor",
    "a range promise that omits values above n": "range-omits-above",
    "counting range promises for instances they do not cover": "counts-uncovered-promises",
    "lease reads without the boot wait": "lease-no-boot-wait",
    "lease reads without grants honoured (the holder's own acceptor)": (
        "lease-own-grant-not-honoured"
    ),
    "lease reads without grants honoured (another acceptor)": "lease-grant-not-honoured",
}


def _catching_runs(name: str) -> list[str]:
    """Where `name` is caught: a seed of `CAUGHT_AT` or a scripted schedule."""
    runs = [f"seed {CAUGHT_AT[name]}"] if name in CAUGHT_AT else []
    for schedules in (SCHEDULES, EXTRA_SCHEDULES):
        runs += [f"schedule {s}" for s, (broken, _, _) in schedules.items() if broken == name]
    return runs


# ---- the history ----------------------------------------------------------------------


def test_history_holds_every_decision_and_every_answered_read() -> None:
    sim = LeaderSimulation(1, stale_read_check=False)
    sim.run()
    check = sim.check_history()
    answered = [r for r in sim.reads.values() if r.index is not None and r.index >= 0]
    assert check.verdict is Verdict.OK
    assert check.appends == len(sim.decisions)
    assert check.reads >= len(answered) > 20
    assert check.configurations < 20_000  # near-linear: a few per op, not exponential


def test_same_seed_same_history() -> None:
    first = LeaderSimulation(3)
    first.run()
    second = LeaderSimulation(3)
    second.run()
    assert first.trace == second.trace
    assert first.history.operations(first.decisions) == second.history.operations(second.decisions)


# ---- random seeds: the checker alone ----------------------------------------------------


@pytest.mark.parametrize("name", READ_RULES)
def test_checker_alone_catches_broken_read_rule(name: str) -> None:
    sim = LeaderSimulation(CAUGHT_AT[name], parts=BROKEN[name], stale_read_check=False)
    with pytest.raises(SimulationFailure, match=CHECKER_VERDICT) as caught:
        sim.run()
    assert "stale read" not in str(caught.value)


@pytest.mark.parametrize("name", READ_RULES)
def test_checker_passes_same_seed_with_rules_kept(name: str) -> None:
    sim = LeaderSimulation(CAUGHT_AT[name], stale_read_check=False)
    sim.run()
    assert sim.check_history().reads > 0


# ---- scripted schedules: the checker alone ----------------------------------------------


@pytest.mark.parametrize("name", READ_SCHEDULES)
def test_checker_alone_catches_schedule(name: str) -> None:
    broken, lease, steps = SCHEDULES[name]
    with pytest.raises(SimulationFailure, match=CHECKER_VERDICT):
        run_schedule(steps, BROKEN[broken], lease, stale_read_check=False)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_history_passes_with_rules_kept(name: str) -> None:
    _, lease, steps = SCHEDULES[name]
    sim = run_schedule(steps, DEFAULT_PARTS, lease, stale_read_check=False)
    assert sim.check_history().verdict is Verdict.OK


@pytest.mark.parametrize("name", sorted(EXTRA_SCHEDULES))
def test_extra_schedule_is_caught_with_its_rule_broken(name: str) -> None:
    broken, lease, steps = EXTRA_SCHEDULES[name]
    with pytest.raises(SimulationFailure, match=CAUGHT):
        run_schedule(steps, BROKEN[broken], lease)
    with pytest.raises(SimulationFailure, match=CHECKER_VERDICT):
        run_schedule(steps, BROKEN[broken], lease, stale_read_check=False)


@pytest.mark.parametrize("name", sorted(EXTRA_SCHEDULES))
def test_extra_schedule_passes_with_the_rule_kept(name: str) -> None:
    _, lease, steps = EXTRA_SCHEDULES[name]
    sim = run_schedule(steps, DEFAULT_PARTS, lease, stale_read_check=False)
    assert sim.history.reads  # the reads were answered, from the lease


# ---- every broken rule is caught somewhere ----------------------------------------------


@pytest.mark.parametrize("rule", sorted(ISSUE_RULES))
def test_broken_rule_exists_and_has_a_catching_run(rule: str) -> None:
    """Each run listed here is executed by the tests of `test_paxos_leader_simulation.py`,
    `test_paxos_leader_schedules.py` or this file, which require it to be caught."""
    name = ISSUE_RULES[rule]
    assert name in BROKEN
    assert _catching_runs(name), f"nothing catches {name!r}"


def test_every_broken_variant_is_caught_somewhere() -> None:
    assert not [name for name in BROKEN if not _catching_runs(name)]
    assert set(ISSUE_RULES.values()) == set(BROKEN)
