"""Fault injection: the course's unreliable rates, cut peers, deaf servers, admin.faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from diskv_trio.net import (
    EVERYONE,
    Faults,
    Identity,
    RpcRemoteError,
    RpcServer,
    RpcTimeout,
    RpcUnavailable,
    open_rpc_pool,
)

CLUSTER = "test-cluster"
DEADLINE_S = 5.0
FAST_FAILURE_S = 1.0
"""A refused call must fail far sooner than its deadline (the course fails at once)."""


async def start(
    nursery: trio.Nursery, sock_dir: Path, node_id: str, service: Any, faults: Faults
) -> RpcServer:
    server = RpcServer(
        f"unix:{sock_dir}/{node_id}",
        Identity(CLUSTER, "peer", node_id),
        service.handlers(),
        roles=EVERYONE,
        faults=faults,
    )
    await nursery.start(server.serve)
    return server


def test_draws_are_deterministic_for_a_seed() -> None:
    """The same seed gives the same fates; reliable mode draws nothing."""
    first, second = Faults(True, seed=7), Faults(True, seed=7)
    assert [first.draw() for _ in range(500)] == [second.draw() for _ in range(500)]
    reliable = Faults(seed=7)
    assert {reliable.draw().value for _ in range(100)} == {"deliver"}


async def test_unreliable_rates_match_the_course(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """Over 2000 calls: ~10 % dropped (not executed), ~18 % executed with the reply lost,
    ~72 % normal; every loss reaches the caller at once as RpcUnavailable."""
    calls = 2000
    faults = Faults(unreliable=True, seed=20150428)
    server = await start(nursery, sock_dir, "s1", service, faults)
    failed: list[int] = []
    async with open_rpc_pool(Identity(CLUSTER, "client", "c1")) as pool:
        for n in range(calls):
            try:
                result = await pool.call(
                    server.address, "paxos.echo", {"n": n}, deadline_s=DEADLINE_S
                )
                assert result == {"n": n}
            except RpcTimeout:
                raise
            except RpcUnavailable:
                failed.append(n)
        await trio.testing.wait_all_tasks_blocked()
    executed = set(service.executed)
    dropped = [n for n in failed if n not in executed]
    reply_lost = [n for n in failed if n in executed]
    assert 0.08 * calls <= len(dropped) <= 0.12 * calls
    assert 0.15 * calls <= len(reply_lost) <= 0.21 * calls
    assert len(service.executed) == len(executed) == calls - len(dropped)
    assert faults.rpc_count["paxos.echo"] == calls - len(dropped)
    assert faults.paxos_rpc_count() == calls - len(dropped)
    assert faults.fault_count["dropped"] == len(dropped)
    assert faults.fault_count["reply-lost"] == len(reply_lost)


async def test_admin_calls_bypass_faults(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """Admin calls are never dropped, refused or counted as RPCs."""
    faults = Faults(unreliable=True, seed=1)
    faults.deaf = True
    faults.cut = {"c1"}
    server = await start(nursery, sock_dir, "s1", service, faults)
    async with open_rpc_pool(Identity(CLUSTER, "operator", "c1")) as pool:
        for _ in range(100):
            stats = await pool.call(server.address, "admin.stats", {}, deadline_s=DEADLINE_S)
    assert stats["rpc_count"] == {}
    assert stats["connections_open"] == 1
    assert not faults.rpc_count


async def test_cut_server_side(sock_dir: Path, nursery: trio.Nursery, service: Any) -> None:
    """A server refuses, at once, every request from a cut node, and only from it."""
    faults = Faults()
    faults.cut.add("c1")
    server = await start(nursery, sock_dir, "s1", service, faults)
    async with open_rpc_pool(Identity(CLUSTER, "client", "c1")) as cut_pool:
        start_time = trio.current_time()
        with pytest.raises(RpcUnavailable):
            await cut_pool.call(server.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
        assert trio.current_time() - start_time < FAST_FAILURE_S
    async with open_rpc_pool(Identity(CLUSTER, "client", "c2")) as other_pool:
        assert await other_pool.call(server.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
    assert service.executed == [2]
    assert faults.rpc_count["test.echo"] == 1
    assert faults.fault_count["cut"] == 1


async def test_cut_pool_side(sock_dir: Path, nursery: trio.Nursery, service: Any) -> None:
    """A pool refuses, at once, calls to a cut node (known from its hello); others go through."""
    s1 = await start(nursery, sock_dir, "s1", service, Faults())
    s2 = await start(nursery, sock_dir, "s2", service, Faults())
    faults = Faults()
    faults.cut.add("s1")
    async with open_rpc_pool(Identity(CLUSTER, "peer", "s3"), faults=faults) as pool:
        start_time = trio.current_time()
        for _ in range(2):
            with pytest.raises(RpcUnavailable):
                await pool.call(s1.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
        assert trio.current_time() - start_time < FAST_FAILURE_S
        assert await pool.call(s2.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
        faults.cut.clear()
        assert await pool.call(s1.address, "test.echo", {"n": 3}, deadline_s=DEADLINE_S)
    assert service.executed == [2, 3]


async def test_deaf_server_refuses_but_still_calls_out(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """TestDeaf: a deaf server refuses every request at once, yet its own calls get replies."""
    deaf_faults = Faults()
    deaf = await start(nursery, sock_dir, "s1", service, deaf_faults)
    other = await start(nursery, sock_dir, "s2", service, Faults())
    deaf_faults.deaf = True
    async with open_rpc_pool(Identity(CLUSTER, "peer", "s2")) as pool_of_other:
        start_time = trio.current_time()
        with pytest.raises(RpcUnavailable):
            await pool_of_other.call(deaf.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
        assert trio.current_time() - start_time < FAST_FAILURE_S
    async with open_rpc_pool(Identity(CLUSTER, "peer", "s1"), faults=deaf_faults) as pool_of_deaf:
        result = await pool_of_deaf.call(
            other.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S
        )
    assert result == {"echo": {"n": 2}}
    assert service.executed == [2]
    assert deaf_faults.fault_count["deaf"] == 1


async def test_admin_faults_at_run_time(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """admin.faults reads and changes the settings of a running server, all or nothing."""
    faults = Faults()
    server = await start(nursery, sock_dir, "s1", service, faults)
    async with open_rpc_pool(Identity(CLUSTER, "operator", "tester")) as pool:
        settings = await pool.call(server.address, "admin.faults", {}, deadline_s=DEADLINE_S)
        assert settings == {"unreliable": False, "cut": [], "deaf": False, "deaf_to": []}
        settings = await pool.call(
            server.address,
            "admin.faults",
            {"unreliable": True, "cut": ["b", "a"]},
            deadline_s=DEADLINE_S,
        )
        assert settings == {"unreliable": True, "cut": ["a", "b"], "deaf": False, "deaf_to": []}
        assert faults.unreliable and faults.cut == {"a", "b"}

        with pytest.raises(RpcRemoteError) as bad:
            await pool.call(
                server.address,
                "admin.faults",
                {"deaf": "yes", "unreliable": False},
                deadline_s=DEADLINE_S,
            )
        assert bad.value.code == "bad-args"
        assert faults.unreliable  # nothing applied

        await pool.call(
            server.address,
            "admin.faults",
            {"deaf": True, "unreliable": False},
            deadline_s=DEADLINE_S,
        )
        with pytest.raises(RpcUnavailable):
            await pool.call(server.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
        await pool.call(
            server.address, "admin.faults", {"deaf": False, "cut": []}, deadline_s=DEADLINE_S
        )
        assert await pool.call(server.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
        stats = await pool.call(server.address, "admin.stats", {}, deadline_s=DEADLINE_S)
    assert service.executed == [2]
    assert stats["rpc_count"] == {"test.echo": 1}
    assert stats["fault_count"] == {"deaf": 1}


async def test_deaf_to_refuses_only_those_peers_and_still_calls_them(
    sock_dir: Path, nursery: trio.Nursery, service: Any
) -> None:
    """TestFreshQuery's renamed socket: the named peers cannot reach us, clients still can,
    and our own calls to those peers still get replies."""
    faults = Faults()
    server = await start(nursery, sock_dir, "s1", service, faults)
    peer = await start(nursery, sock_dir, "s2", service, Faults())
    faults.update({"deaf_to": ["s2"]})
    async with open_rpc_pool(Identity(CLUSTER, "peer", "s2")) as pool_of_peer:
        with pytest.raises(RpcUnavailable):
            await pool_of_peer.call(server.address, "test.echo", {"n": 1}, deadline_s=DEADLINE_S)
    async with open_rpc_pool(Identity(CLUSTER, "client", "c1")) as client_pool:
        assert await client_pool.call(server.address, "test.echo", {"n": 2}, deadline_s=DEADLINE_S)
    async with open_rpc_pool(Identity(CLUSTER, "peer", "s1"), faults=faults) as own_pool:
        assert await own_pool.call(peer.address, "test.echo", {"n": 3}, deadline_s=DEADLINE_S)
    assert service.executed == [2, 3]
    with pytest.raises(ValueError, match="deaf_to"):
        faults.update({"deaf_to": "s2"})
