"""The nemesis favours leaders as targets, within the budget, with seeded draws; without processes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import tools.crash._nemesis as nemesis_module
from diskv_trio.cluster import LocalCluster
from tools.crash import CrashOptions, CrashResult
from tools.crash._events import Timeline
from tools.crash._leaders import leader_from_statuses
from tools.crash._nemesis import Broken, Nemesis
from tools.crash._nemesis_settings import LEADER_TARGET_CHANCE

MEMBERS = ["a", "b", "c"]
INDEX = {"a": 0, "b": 1, "c": 2}


def _status(leading: bool, leader: int | None) -> dict[str, Any]:
    return {"paxos": {"leading": leading, "leader": leader}}


def test_the_leader_is_who_claims_it_or_whom_most_name() -> None:
    assert leader_from_statuses(MEMBERS, INDEX, {}) is None
    assert leader_from_statuses(MEMBERS, INDEX, {"a": _status(False, None)}) is None
    one = {"a": _status(False, 2), "c": _status(True, 2)}
    assert leader_from_statuses(MEMBERS, INDEX, one) == "c"
    # An old leader still claims it; the others follow the newer one.
    two = {"a": _status(True, 0), "b": _status(False, 2), "c": _status(True, 2)}
    assert leader_from_statuses(MEMBERS, INDEX, two) == "c"
    hinted = {"a": _status(False, 1), "c": _status(False, 1)}
    assert leader_from_statuses(MEMBERS, INDEX, hinted) == "b"
    assert leader_from_statuses(MEMBERS, INDEX, {"a": _status(False, 7)}) is None


def _nemesis(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    """A nemesis whose groups are each led by their member with index 1."""
    cluster = LocalCluster(tmp_path, groups=2, replicas=3)

    async def find_leader(
        cluster: LocalCluster, members: Sequence[str], skip: object = ()
    ) -> str | None:
        return next(m for m in members if cluster.spec(m).me == 1)

    monkeypatch.setattr(nemesis_module, "find_leader", find_leader)
    return Nemesis(cluster, random.Random(seed), Timeline())


async def _draws(nemesis: Nemesis, count: int) -> list[tuple[str, bool]]:
    chosen = []
    for _ in range(count):
        target = await nemesis.choose_target("kill", nemesis.rng)
        assert target is not None
        chosen.append((target, nemesis.broken.pop(target).leader))
    return chosen


async def test_leaders_are_favoured_and_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nemesis = _nemesis(tmp_path, 1, monkeypatch)
    chosen = await _draws(nemesis, 400)
    for target, leader in chosen:
        assert leader == (nemesis.cluster.spec(target).me == 1)
    share = sum(leader for _, leader in chosen) / len(chosen)
    expected = LEADER_TARGET_CHANCE + (1 - LEADER_TARGET_CHANCE) / 3  # aimed at, or drawn
    assert abs(share - expected) < 0.1


async def test_the_same_seed_gives_the_same_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _draws(_nemesis(tmp_path, 7, monkeypatch), 50)
    again = await _draws(_nemesis(tmp_path, 7, monkeypatch), 50)
    assert first == again


async def test_a_leader_beyond_the_budget_is_not_struck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nemesis = _nemesis(tmp_path, 3, monkeypatch)
    for group in (100, 101):
        nemesis.broken[nemesis.cluster.group_servers(group)[0]] = Broken("pause")
    # Only the shardmasters are left within the budget: whatever is drawn is one of them.
    for _ in range(20):
        target = await nemesis.choose_target("cut", nemesis.rng)
        assert target is not None and target.startswith("master-")
        nemesis.broken.pop(target)


def test_the_report_counts_faults_on_leaders() -> None:
    result = CrashResult(CrashOptions(seed=1, minutes=0.1), Path("/nonexistent"))
    timeline = Timeline()
    timeline.fault("kill", "SIGKILL x", leader=True)
    timeline.fault("kill", "SIGKILL y", leader=False)
    timeline.fault("move", "moved shard 1")
    result.targeted_counts = timeline.targeted_counts
    result.leader_counts = timeline.leader_counts
    assert "faults on a leader: 1 of 2 that struck one server (kill 1/2;" in result.summary()
    assert timeline.events[0][1] == "SIGKILL x (its group's leader)"
