"""The verdict of `diskv status` and the `admin join` check, as tables: status rows in, verdicts out."""

from __future__ import annotations

from typing import Any

import pytest

from diskv_trio.cli._health import DEGRADED, HEALTHY, UNAVAILABLE, assess, shard_ranges
from diskv_trio.cli._reconfig import verdict_on_answers

M = ["unix:/m0", "unix:/m1", "unix:/m2"]
G100 = ["unix:/a0", "unix:/a1", "unix:/a2"]
G101 = ["unix:/b0", "unix:/b1", "unix:/b2"]


def up(address: str, *, config: int = 2, present: tuple[int, ...] = (), waiting: tuple[int, ...] = (),
       applied: int = 5, **extra: Any) -> dict[str, Any]:
    return {"address": address, "answers": True, "state": "intact", "serving": True, "applied": applied,
            "max": applied, "min": applied + 1, "paxos": {"epoch": 0}, "alarm": None,
            "machine": {"config": config, "present": list(present), "waiting": list(waiting)}} | extra


def down(address: str) -> dict[str, Any]:
    return {"address": address, "answers": False, "error": "connection refused"}


CONFIG = {"num": 2, "shards": [100, 100, 101, 101], "groups": {"100": G100, "101": G101}}


def status(groups: dict[str, list[dict[str, Any]]], masters: list[dict[str, Any]] | None = None,
           config: dict[str, Any] | None = CONFIG, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"masters": masters or [up(a) for a in M], "groups": groups}
    if config is not None:
        result["config"] = config
    if previous is not None:
        result["previous_config"] = previous
    return result


def healthy_groups() -> dict[str, list[dict[str, Any]]]:
    return {"100": [up(a, present=(0, 1)) for a in G100], "101": [up(a, present=(2, 3)) for a in G101]}


def test_all_up_is_healthy() -> None:
    health = assess(status(healthy_groups()))
    assert health.verdict == HEALTHY
    assert health.unserved == {}


def test_one_replica_down_is_degraded_and_named() -> None:
    groups = healthy_groups()
    groups["101"][1] = down(G101[1])
    health = assess(status(groups), names={G101[1]: "g101-1"})
    assert health.verdict == DEGRADED
    assert "g101-1 down" in health.summary
    assert health.groups[1].servers[1].name == "g101-1"


def test_group_without_majority_makes_its_shards_unserved() -> None:
    groups = healthy_groups()
    groups["101"] = [up(G101[0], present=(2, 3)), down(G101[1]), down(G101[2])]
    health = assess(status(groups))
    assert health.verdict == UNAVAILABLE
    assert health.unserved == {2: "group 101 has 1 of 3 replicas up", 3: "group 101 has 1 of 3 replicas up"}


def test_shards_waiting_name_the_group_they_wait_for() -> None:
    previous = {"num": 1, "shards": [100, 100, 102, 102], "groups": {}}
    groups = healthy_groups()
    groups["101"] = [up(a, present=(), waiting=(2, 3)) for a in G101]
    health = assess(status(groups, previous=previous))
    assert health.verdict == UNAVAILABLE
    assert health.unserved[2] == "group 101 waits for group 102 to hand it over"
    assert health.groups[1].shards_waiting == {2: 102, 3: 102}


def test_group_behind_the_latest_configuration_has_not_taken_its_new_shards() -> None:
    groups = healthy_groups()
    groups["101"] = [up(a, config=1, present=(2,)) for a in G101]
    previous = {"num": 1, "shards": [100, 100, 101, 100], "groups": {}}
    health = assess(status(groups, previous=previous))
    assert set(health.unserved) == {3}


def test_no_shardmaster_majority_is_unavailable() -> None:
    health = assess(status({}, masters=[up(M[0]), down(M[1]), down(M[2])], config=None))
    assert health.verdict == UNAVAILABLE
    assert "1 of 3" in health.summary


def test_disk_full_alarm_is_degraded() -> None:
    groups = healthy_groups()
    groups["100"][0] = up(G100[0], present=(0, 1), alarm="nospace")
    health = assess(status(groups))
    assert health.verdict == DEGRADED
    assert "disk full" in health.summary


def test_json_form_has_the_same_verdict() -> None:
    health = assess(status(healthy_groups()))
    data = health.to_json()
    assert data["verdict"] == HEALTHY
    assert [s["address"] for s in data["groups"][0]["servers"]] == G100


@pytest.mark.parametrize(
    "shards, text",
    [([], "none"), ([3], "3"), ([0, 1, 2, 5, 7, 8], "0-2,5,7-8"), ([9, 1, 0], "0-1,9")],
)
def test_shard_ranges(shards: list[int], text: str) -> None:
    assert shard_ranges(shards) == text


@pytest.mark.parametrize(
    "answers, refused",
    [
        ({"a": {"role": "shardkv", "group": 102}, "b": {"role": "shardkv", "group": 102}, "c": "refused"}, None),
        ({"a": "refused", "b": "refused", "c": "refused"}, "only 0 of 3"),
        ({"a": {"role": "shardkv", "group": 102}, "b": "refused", "c": "refused"}, "only 1 of 3"),
        ({"a": {"role": "shardkv", "group": 101}, "b": {"role": "shardkv", "group": 102}}, "a is group 101"),
        ({"a": {"role": "shardmaster", "group": 0}}, "a is a shardmaster"),
    ],
)
def test_join_check(answers: dict[str, Any], refused: str | None) -> None:
    verdict = verdict_on_answers(102, answers)
    if refused is None:
        assert verdict is None
    else:
        assert verdict is not None and refused in verdict
