"""Netfault bookkeeping without namespaces: host placement, netem left out where missing,
the replay command, and the one-line skip where namespaces cannot be made."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import tools.crash.netfault
from diskv_trio.cluster import LocalCluster
from tools.crash._events import Timeline
from tools.crash._netns import Host, HostNetwork
from tools.crash._netns_cluster import SERVER_PORT, NetnsPlacement, hosts_needed
from tools.crash._netns_nemesis import NetNemesis
from tools.crash.netfault import SKIP_PREFIX, NetfaultOptions


def _network(count: int) -> HostNetwork:
    """A network described, not created: hosts with names and addresses only."""
    network = HostNetwork(count, prefix="dkv1-t")
    network.hosts = [
        Host(i, f"dkv1-th{i}", f"dkv1-tv{i}", f"dkv1-ti{i}", f"10.231.9.{i + 2}")
        for i in range(count)
    ]
    return network


def _cluster(tmp_path: Path, network: HostNetwork) -> LocalCluster:
    return LocalCluster(tmp_path, groups=2, replicas=3, placement=NetnsPlacement(network))


def test_each_server_gets_its_own_host_and_runs_there(tmp_path: Path) -> None:
    network = _network(hosts_needed(groups=2, replicas=3))
    cluster = _cluster(tmp_path, network)
    addresses = [spec.address for spec in cluster.servers.values()]
    assert len(set(addresses)) == len(addresses) == 9
    assert all(address.endswith(f":{SERVER_PORT}") for address in addresses)
    spec = cluster.spec("g101-2")
    argv = cluster.placement.command(spec.address, ["python", "-m", "diskv_trio", "serve"])  # type: ignore[union-attr]
    assert argv[:4] == ["ip", "netns", "exec", network.host_of(spec.address.split(":")[0]).netns]
    assert spec.peers == cluster.group_addresses(101)


def test_a_network_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no host left"):
        _cluster(tmp_path, _network(4))


@pytest.mark.parametrize("netem", [True, False])
def test_netem_faults_only_where_the_kernel_has_netem(tmp_path: Path, netem: bool) -> None:
    network = _network(9)
    nemesis = NetNemesis(
        _cluster(tmp_path, network), random.Random(1), Timeline(), network=network, netem=netem
    )
    assert (nemesis.kind_weights["netem"] > 0) is netem
    assert ("netem" in nemesis.opening_kinds) is netem  # every kernel kind once, first
    assert {"partition", "isolate", "slow"} <= set(nemesis.opening_kinds)
    assert nemesis.host_index("g100-0") == 3  # shardmasters take the first three hosts


def test_replay_command_runs_netfault() -> None:
    options = NetfaultOptions(
        seed=5, minutes=0.5, groups=2, replicas=3, clients=4, disk_faults=True
    )
    assert options.replay_command() == (
        "python -m tools.crash.netfault --seed 5 --minutes 0.5 --groups 2 --replicas 3 --clients 4 --disk-faults"
    )


def test_skips_in_one_line_without_privilege(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        tools.crash.netfault, "netns_unavailable_reason", lambda: "not running as root"
    )
    assert tools.crash.netfault.main(["--seed", "1", "--minutes", "0"]) == 0
    out = capsys.readouterr().out
    assert out == f"{SKIP_PREFIX} not running as root\n"
