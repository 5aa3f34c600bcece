"""Methods served to other roles, called by a client, against real server processes.

A caller holding the client key authenticates as a client and calls what only peers or
operators may: state transfer, shard hand-off and drop, fault injection (to partition or
deafen a server), statistics, status, configuration changes, and the supervisor's
`cluster.kill` with `lose_disk`. Each answer is "forbidden", the connection keeps serving
the client's own methods, and afterwards no fault is set anywhere, the configuration is
the cluster's own, and every acknowledged value reads back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from diskv_trio.client import connect
from diskv_trio.kvproto import DEFAULT_SHARDING
from diskv_trio.net import Role, load_credentials
from tests.security.harness import CLUSTER_NAME, SharedCluster
from tests.security.raw import open_authenticated, open_raw

pytestmark = pytest.mark.slow

VICTIM = "victim-of-forbidden-calls"

REPLICA_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("rsm.fetch_state", {}),
    ("rsm.fetch_state", {"offset": 0}),
    ("kv.pull_shard", {"config_num": 1, "shard": DEFAULT_SHARDING.shard_of(VICTIM.encode())}),
    ("kv.drop_shard", {"config_num": 1, "shard": DEFAULT_SHARDING.shard_of(VICTIM.encode())}),
    ("admin.faults", {"cut": ["shardkv-100-1", "shardkv-100-2"]}),
    ("admin.faults", {"deaf": True}),
    ("admin.faults", {"unreliable": True}),
    ("admin.faults", {}),
    ("admin.stats", {}),
    ("rsm.status", {}),
]
MASTER_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("sm.join", {"gid": 666, "servers": ["unix:/tmp/intruder.sock"]}),
    ("sm.leave", {"gid": 100}),
    ("sm.move", {"shard": 0, "gid": 666}),
    ("sm.query_applied", {"num": -1}),
    ("admin.faults", {"deaf": True}),
    ("admin.stats", {}),
    ("rsm.status", {}),
    ("rsm.fetch_state", {}),
]
PEER_ONLY_CALLS = [call for call in REPLICA_CALLS if not call[0].startswith(("admin.", "rsm.status"))]


async def assert_no_faults_anywhere(shared: SharedCluster) -> None:
    async with shared.pool(Role.OPERATOR) as operator:
        for spec in shared.cluster.servers.values():
            settings = await operator.call(spec.address, "admin.faults", {}, deadline_s=5.0)
            assert settings == {"unreliable": False, "cut": [], "deaf": False, "deaf_to": []}, spec.name


async def assert_own_configuration(shared: SharedCluster) -> None:
    async with shared.client() as kv:
        with trio.fail_after(30):
            config = await kv.config()
    assert set(config.groups) == {shared.gid}
    assert set(config.shards) == {shared.gid}
    assert list(config.groups[shared.gid]) == shared.cluster.group_addresses(shared.gid)


async def refused_calls(
    shared: SharedCluster, name: str, role: Role, calls: list[tuple[str, dict[str, Any]]], follow_up: tuple[str, dict[str, Any]]
) -> None:
    """Each call from `role` to server `name` is "forbidden"; `follow_up` still succeeds."""
    async with open_authenticated(shared.address(name), CLUSTER_NAME, role, shared.key(role)) as raw:
        for method, args in calls:
            with trio.fail_after(2):
                reply = await raw.call(method, args)
            assert reply is not None, (method, "connection closed")
            assert reply["e"]["code"] == "forbidden", (method, reply)
            assert reply["e"]["message"] == f"{method!r} is not served to the {role.value} role"
        with trio.fail_after(10):
            reply = await raw.call(*follow_up)
        assert reply is not None and "r" in reply, reply


async def test_peer_and_operator_methods_are_forbidden_to_a_client_of_a_replica(shared: SharedCluster) -> None:
    async with shared.client() as kv:
        await shared.put_acknowledged(kv, VICTIM, "kept")
    for name in shared.replicas:
        await refused_calls(
            shared, name, Role.CLIENT, REPLICA_CALLS, ("kv.op", {"op": "get", "key": VICTIM})
        )
    await assert_no_faults_anywhere(shared)
    await shared.check_unharmed(marker="replica-calls")


async def test_configuration_changes_are_forbidden_to_a_client_of_a_shardmaster(shared: SharedCluster) -> None:
    for name in shared.masters:
        await refused_calls(shared, name, Role.CLIENT, MASTER_CALLS, ("sm.query", {"num": -1}))
    await assert_no_faults_anywhere(shared)
    await assert_own_configuration(shared)
    await shared.check_unharmed(marker="master-calls")


async def test_peer_methods_are_forbidden_to_an_operator(shared: SharedCluster) -> None:
    """The operator key does not open state transfer or shard hand-off: those are peers'."""
    name = shared.replicas[2]
    await refused_calls(
        shared, name, Role.OPERATOR, PEER_ONLY_CALLS, ("admin.faults", {})
    )
    await assert_own_configuration(shared)
    await shared.check_unharmed(marker="operator-calls")


# -- the supervisor of `diskv cluster up` ----------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    """Poll another process's files until `condition()` holds."""
    with trio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110 - another process, no event to wait on
            await trio.sleep(0.1)


async def test_the_supervisor_refuses_kill_and_restart_to_clients_and_peers() -> None:
    """`diskv cluster up` in a subprocess: `cluster.kill` with `lose_disk` and
    `cluster.restart` from a client or a peer are "forbidden", without a key the hello is
    refused; every server keeps its pid and its data, and a client reads what it wrote."""
    base = Path(tempfile.mkdtemp(prefix="dks-", dir="/tmp"))
    data_dir = base / "d"
    description = data_dir / "cluster.json"
    up = await trio.lowlevel.open_process(
        [sys.executable, "-m", "diskv_trio", "cluster", "up", "--groups", "1", "--dir", str(data_dir)],
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids: list[int] = []
    try:
        await _wait_for(lambda: description.exists() and json.loads(description.read_text()).get("supervisor"))
        described = json.loads(description.read_text())
        cluster_name = described["cluster"]
        pids = [server["pid"] for server in described["servers"].values()]
        assert len(pids) == 6 and all(pids)
        victim_dir = Path(described["servers"]["g100-0"]["dir"])
        credentials = load_credentials(data_dir / "credentials")
        client_key = credentials.key("client")
        assert client_key is not None
        async with connect(described["masters"], cluster=cluster_name, credentials=credentials) as kv:
            with trio.fail_after(30):
                await kv.put("kept", "before the attack")
        files_before = sorted(p.name for p in victim_dir.rglob("*"))
        assert files_before

        supervisor = described["supervisor"]
        for role in (Role.CLIENT, Role.PEER):
            key = credentials.key(role)
            assert key is not None
            async with open_authenticated(supervisor, cluster_name, role, key) as raw:
                for method, args in (
                    ("cluster.kill", {"server": "g100-0", "lose_disk": True}),
                    ("cluster.kill", {"server": "master-0"}),
                    ("cluster.restart", {"server": "g100-0"}),
                ):
                    with trio.fail_after(2):
                        reply = await raw.call(method, args)
                    assert reply is not None and reply["e"]["code"] == "forbidden", (role, method, reply)
        async with open_raw(supervisor) as raw:
            reply = await raw.hello(cluster_name, "operator", "intruder", client_key)
            assert reply is not None and reply["code"] == "auth", reply

        after = json.loads(description.read_text())
        assert [server["pid"] for server in after["servers"].values()] == pids
        assert all(_alive(pid) for pid in pids)
        assert sorted(p.name for p in victim_dir.rglob("*")) >= files_before
        async with connect(described["masters"], cluster=cluster_name, credentials=credentials) as kv:
            with trio.fail_after(30):
                assert await kv.get_text("kept") == "before the attack"
        assert up.returncode is None
        up.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            await up.wait()
        assert up.returncode == 0
        await _wait_for(lambda: not any(_alive(pid) for pid in pids), timeout_s=15)
    finally:
        if up.returncode is None:
            up.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if os.environ.get("DISKV_KEEP_TEST_DIRS") != "1":
            import shutil

            shutil.rmtree(base, ignore_errors=True)
