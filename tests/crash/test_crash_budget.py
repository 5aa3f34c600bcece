"""The crash session's bookkeeping, without processes: the nemesis's minority budget, the
keys the clients use and the replay command."""

from __future__ import annotations

import random
from pathlib import Path

from diskv_trio.cluster import LocalCluster
from diskv_trio.kvproto import DEFAULT_SHARDING
from tools.crash import CrashOptions
from tools.crash._events import Timeline
from tools.crash._nemesis import Broken, Nemesis
from tools.crash._workload import probe_key, session_keys


def _nemesis(tmp_path: Path, replicas: int) -> Nemesis:
    cluster = LocalCluster(tmp_path, groups=2, replicas=replicas)
    return Nemesis(cluster, random.Random(1), Timeline())


def test_budget_is_a_minority_of_each_group(tmp_path: Path) -> None:
    nemesis = _nemesis(tmp_path, replicas=5)
    first, second, third = nemesis.cluster.group_servers(100)[:3]
    assert nemesis.admissible(first)
    nemesis.broken[first] = Broken("kill")
    assert not nemesis.admissible(first)  # already broken
    assert nemesis.admissible(second)
    nemesis.broken[second] = Broken("pause")
    assert not nemesis.admissible(third)  # 2 of 5 broken: a third would leave no majority
    assert all(nemesis.admissible(n) for n in nemesis.cluster.group_servers(101))


def test_budget_counts_shardmasters_as_a_group(tmp_path: Path) -> None:
    nemesis = _nemesis(tmp_path, replicas=3)
    nemesis.broken["master-0"] = Broken("cut")
    assert not nemesis.admissible("master-1")
    assert nemesis.admissible(nemesis.cluster.group_servers(100)[0])


def test_targets_never_exceed_the_budget(tmp_path: Path) -> None:
    nemesis = _nemesis(tmp_path, replicas=3)
    picked = []
    while (target := nemesis.pick_target()) is not None:
        nemesis.broken[target] = Broken("kill")
        picked.append(target)
    groups = [nemesis.group_key(name) for name in picked]
    assert len(groups) == len(set(groups)) == 3  # one per group: two groups and the masters


def test_keys_spread_over_shards_and_probes_are_apart() -> None:
    keys = session_keys(40)
    shards = [DEFAULT_SHARDING.shard_of(key.encode()) for key in keys]
    assert len(set(shards)) >= 30  # crc32c spreads them (40 keys over 120 shards)
    for shard in (0, 7, DEFAULT_SHARDING.count - 1):
        probe = probe_key(shard, DEFAULT_SHARDING)
        assert DEFAULT_SHARDING.shard_of(probe.encode()) == shard
        assert probe not in keys


def test_replay_command_names_every_option() -> None:
    options = CrashOptions(seed=42, minutes=2.5, groups=3, replicas=5, clients=7, disk_faults=True)
    assert options.replay_command() == (
        "python -m tools.crash --seed 42 --minutes 2.5 --groups 3 --replicas 5 --clients 7 --disk-faults"
    )
