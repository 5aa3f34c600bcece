"""Resource attacks on real server processes: connections, half-sent frames, unread replies.

- Idle connections that never send a hello, past `UNAUTHENTICATED_CONNECTIONS_MAX`: the
  extra ones get a "busy" refusal instead of a challenge, the idle ones are closed after
  `HELLO_TIMEOUT_S`, and then legitimate callers connect again.
- Authenticated client connections past `CLIENT_CONNECTIONS_MAX`: the extra ones are
  turned away with "busy" right after their hello.
- Half of a large frame, then silence: the server serves everyone else meanwhile, and
  closing that connection frees it (`FRAME_STALL_TIMEOUT_S`, 30 s, is tested in-process).
- Many `kv.op` gets of a 1 MiB value whose replies are never read: the server keeps
  answering others, and drops that connection once `OUTPUT_BYTES_MAX` is queued.

While one server's handshake slots are held by an attacker without any key, legitimate
callers opening a new connection to it get a "busy" refusal, which the pool raises as
`RpcUnavailable`: the client, the shardmaster clerk and the replicas' own background tasks
try another server or retry, and no server exits.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio

from diskv_trio.cluster import ClusterError
from diskv_trio.net import HandshakeError, Role, RpcPool
from diskv_trio.net._limits import (
    CLIENT_CONNECTIONS_MAX,
    HELLO_TIMEOUT_S,
    OUTPUT_BYTES_MAX,
    UNAUTHENTICATED_CONNECTIONS_MAX,
    WRITE_STALL_TIMEOUT_S,
)
from diskv_trio.shardmaster import ShardmasterError
from tests.security.harness import CLUSTER_NAME, SharedCluster, replica_get
from tests.security.raw import RawConnection, open_authenticated, open_raw

pytestmark = pytest.mark.slow

RESPONSIVE_WITHIN_S = 2.0
BUSY = {"code": "busy", "message": "too many connections"}


async def connections_open(pool: RpcPool, address: str) -> int:
    stats = await pool.call(address, "admin.stats", {}, deadline_s=5.0)
    return int(stats["connections_open"])


async def wait_connections_open(pool: RpcPool, address: str, expected: int, timeout_s: float = 10.0) -> None:
    """Poll the server's count of open connections until it is `expected`."""
    with trio.fail_after(timeout_s):
        while await connections_open(pool, address) != expected:  # noqa: ASYNC110 - another process
            await trio.sleep(0.05)


async def assert_responsive(pool: RpcPool, address: str, key: str, rounds: int = 5) -> None:
    """`rounds` gets through the replica at `address`, each answered quickly."""
    for _ in range(rounds):
        started = time.monotonic()
        with trio.fail_after(RESPONSIVE_WITHIN_S):
            await replica_get(pool, address, key)
        assert time.monotonic() - started < RESPONSIVE_WITHIN_S


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def saturated(address: str) -> AsyncIterator[None]:
    """Hold every handshake slot of the server at `address` without any key: idle
    connections, reopened as soon as the server closes them. Yields once a connection
    has been turned away with "busy"."""
    full = trio.Event()

    async def hold() -> None:
        while True:
            try:
                async with open_raw(address) as raw:
                    if raw.greeting == BUSY:
                        full.set()
                        await trio.sleep(0.05)
                        continue
                    await raw.frames_until_closed(timeout_s=HELLO_TIMEOUT_S * 4)
            except OSError:
                await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        for _ in range(UNAUTHENTICATED_CONNECTIONS_MAX + 8):
            nursery.start_soon(hold)
        with trio.fail_after(10):
            await full.wait()
        yield
        nursery.cancel_scope.cancel()


async def test_idle_connections_past_the_cap_are_turned_away_then_closed(shared: SharedCluster) -> None:
    """128 idle connections take every handshake slot: the next ones get "busy" instead of
    a challenge; the idle ones are closed after HELLO_TIMEOUT_S; legitimate callers then
    connect to that server again."""
    name = shared.replicas[1]
    address = shared.address(name)
    # Every server's connections to every other are open before the slots are taken (see
    # the tests below for what a new connection meets while they are).
    await shared.check_unharmed(marker="before-idle-connections")
    async with AsyncExitStack() as stack:
        connections: list[RawConnection] = []
        for _ in range(UNAUTHENTICATED_CONNECTIONS_MAX + 6):
            connections.append(await stack.enter_async_context(open_raw(address)))
        greetings = [c.greeting for c in connections]
        challenged = [g for g in greetings if g is not None and "challenge" in g]
        first_busy = greetings.index(BUSY)
        # Servers of the cluster may be opening a connection at the same moment.
        assert UNAUTHENTICATED_CONNECTIONS_MAX - 4 <= len(challenged) <= UNAUTHENTICATED_CONNECTIONS_MAX
        assert greetings[first_busy:] == [BUSY] * (len(greetings) - first_busy)
        shared.assert_every_server_alive()
        started = time.monotonic()
        for connection in connections[:first_busy]:
            assert await connection.frames_until_closed(timeout_s=HELLO_TIMEOUT_S + 5) == []
        assert time.monotonic() - started < HELLO_TIMEOUT_S + 5
    async with shared.pool(Role.CLIENT) as pool:
        with trio.fail_after(10):
            await replica_get(pool, address, "anything")
    await shared.check_unharmed(marker="idle-connections")


async def test_client_connections_past_the_cap_are_turned_away_after_their_hello(shared: SharedCluster) -> None:
    await shared.check_unharmed(marker="before-client-connections")
    name = shared.masters[2]
    address = shared.address(name)
    key = shared.key(Role.CLIENT)
    refused: dict[str, Any] | None = None
    accepted = 0
    async with AsyncExitStack() as stack:
        for n in range(CLIENT_CONNECTIONS_MAX + 1):
            raw = await stack.enter_async_context(open_raw(address))
            reply = await raw.hello(CLUSTER_NAME, "client", f"crowd-{n}", key)
            assert reply is not None and reply.get("id") is not None, reply
            # An unknown method is answered at once on an accepted connection; one turned
            # away after its hello gets a refusal frame instead, and is closed.
            answer = await raw.call("no.such.method", {})
            if answer is None or "i" not in answer:
                refused = answer
                break
            assert answer["e"]["code"] == "unknown-method", answer
            accepted += 1
        assert refused == {"code": "busy", "message": "too many client connections"}
        # The supervisor's operator connection counts too.
        assert CLIENT_CONNECTIONS_MAX - 8 <= accepted < CLIENT_CONNECTIONS_MAX
        shared.assert_every_server_alive()
    async with shared.pool(Role.CLIENT) as pool:
        with trio.fail_after(10):
            reply = await pool.call(address, "sm.query", {"num": -1}, deadline_s=5.0)
        assert reply["config"]["num"] >= 1
    await shared.check_unharmed(marker="client-connections")


async def test_a_half_sent_frame_holds_nothing_but_its_own_connection(shared: SharedCluster) -> None:
    name = shared.replicas[2]
    address = shared.address(name)
    async with shared.client() as kv:
        await shared.put_acknowledged(kv, "half-sent", "kept")
    async with shared.pool(Role.OPERATOR) as operator, shared.pool(Role.CLIENT) as client:
        await replica_get(client, address, "half-sent")
        baseline = await connections_open(operator, address)
        async with open_authenticated(address, CLUSTER_NAME, Role.CLIENT, shared.key(Role.CLIENT)) as raw:
            announced = 8 * 1024 * 1024
            assert await raw.send_bytes(announced.to_bytes(4, "big") + b"\xa3" + b"\x00" * (1024 * 1024))
            await wait_connections_open(operator, address, baseline + 1)
            await assert_responsive(client, address, "half-sent")
            async with shared.client() as kv:
                with trio.fail_after(RESPONSIVE_WITHIN_S * 5):
                    await kv.put("during-half-sent", "served")
                    assert await kv.get_text("half-sent") == "kept"
            shared.acknowledged["during-half-sent"] = "served"
        await wait_connections_open(operator, address, baseline)
    await shared.check_unharmed(marker="half-sent")


async def test_a_client_that_never_reads_its_big_replies_loses_only_its_connection(
    shared: SharedCluster,
) -> None:
    """150 gets of a 1 MiB value, never read (150 MiB of replies, more than OUTPUT_BYTES_MAX):
    others are answered quickly meanwhile, the server's memory stays bounded, and the
    server closes that connection while its socket is still open."""
    name = shared.replicas[0]
    address = shared.address(name)
    big = "b" * (1024 * 1024)
    requests = 150
    assert requests * len(big) > OUTPUT_BYTES_MAX
    async with shared.client() as kv:
        await shared.put_acknowledged(kv, "big", big)
    pid = shared.cluster.spec(name).process.pid  # type: ignore[union-attr]
    async with shared.pool(Role.OPERATOR) as operator, shared.pool(Role.CLIENT) as client:
        await replica_get(client, address, "big")
        baseline = await connections_open(operator, address)
        resident_before = resident_bytes(pid)
        async with open_authenticated(address, CLUSTER_NAME, Role.CLIENT, shared.key(Role.CLIENT)) as raw:
            for _ in range(requests):
                await raw.request("kv.op", {"op": "get", "key": "big"})
            await assert_responsive(client, address, "half-sent-or-anything", rounds=10)
            # Dropped by the server although this end never closed it. The writer notices
            # the overflow only when its blocked write gives up (WRITE_STALL_TIMEOUT_S), not
            # at the overflow itself as the outbox's docstring says; memory stays bounded.
            await wait_connections_open(operator, address, baseline, timeout_s=WRITE_STALL_TIMEOUT_S + 5)
            await assert_responsive(client, address, "big", rounds=3)
            growth = resident_bytes(pid) - resident_before
            assert growth < 4 * OUTPUT_BYTES_MAX, growth
    await shared.check_unharmed(marker="unread-replies")


# -- a saturated server turns legitimate callers away, and they do not move on ------------
# These run last in the module: the bug they document kills servers, which each test
# starts again before it ends (`restart_exited`).



async def test_a_legitimate_client_is_served_while_one_replica_is_saturated(shared: SharedCluster) -> None:
    await shared.check_unharmed(marker="before-saturated-replica")
    failure: BaseException | None = None
    try:
        async with saturated(shared.address(shared.replicas[0])):
            try:
                async with shared.client() as kv:
                    with trio.fail_after(20):
                        await kv.put("while-saturated", "served")
                        assert await kv.get_text("while-saturated") == "served"
                shared.acknowledged["while-saturated"] = "served"
            except (HandshakeError, trio.TooSlowError) as exc:
                failure = exc
        shared.assert_every_server_alive()
    finally:
        await shared.restart_exited()
    assert failure is None, f"the legitimate client failed: {failure!r}"


async def test_a_legitimate_client_is_served_while_one_shardmaster_is_saturated(shared: SharedCluster) -> None:
    await shared.check_unharmed(marker="before-saturated-master")
    failure: BaseException | None = None
    try:
        async with saturated(shared.address(shared.masters[0])):
            try:
                async with shared.client() as kv:
                    with trio.fail_after(20):
                        assert await kv.get_text("while-saturated") == shared.acknowledged.get("while-saturated")
            except (HandshakeError, ShardmasterError, trio.TooSlowError) as exc:
                failure = exc
        shared.assert_every_server_alive()
    finally:
        await shared.restart_exited()
    assert failure is None, f"the legitimate client failed: {failure!r}"


async def test_a_replica_restarted_while_a_shardmaster_is_saturated_keeps_running(shared: SharedCluster) -> None:
    await shared.check_unharmed(marker="before-restart-saturated-master")
    name = shared.replicas[1]
    failure: BaseException | None = None
    try:
        await shared.run(shared.cluster.kill, name)
        async with saturated(shared.address(shared.masters[0])):
            try:
                await shared.run(shared.cluster.restart, name)
                await trio.sleep(2.0)  # several ticks, each asking every shardmaster
            except ClusterError as exc:
                failure = exc
            exited = [n for n in shared.cluster.servers if not shared.cluster.is_running(n)]
    finally:
        await shared.restart_exited()
    assert failure is None, f"{name} did not start: {failure!r}"
    assert exited == [], f"exited while a shardmaster was saturated: {exited}"


async def test_the_group_survives_a_replica_saturated_as_it_restarts(shared: SharedCluster) -> None:
    await shared.check_unharmed(marker="before-restart-saturated-replica")
    victim = shared.replicas[2]
    await shared.run(shared.cluster.kill, victim)
    try:
        async with trio.open_nursery() as nursery:
            # The attacker connects as soon as the restarted replica listens.
            nursery.start_soon(functools.partial(shared.run, functools.partial(shared.cluster.restart, victim, wait=False)))
            async with saturated(shared.address(victim)):
                await trio.sleep(3.0)  # the peers' progress probes reconnect within a second
                exited = [n for n in shared.cluster.servers if not shared.cluster.is_running(n)]
    finally:
        await shared.restart_exited()
    assert exited == [], f"exited while {victim}'s handshake slots were held: {exited}"
