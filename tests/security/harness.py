"""One real local cluster shared by the tests of a module, and the checks every attack ends with.

pytest-trio runs each test in a fresh Trio loop, so a cluster opened by a test fixture
lives only as long as one test. `SharedCluster` instead runs `open_local_cluster` in a Trio
loop of its own, in a thread, for a whole module; tests reach it through `run` (its
methods, in its loop) and talk to the servers from their own loop with their own
connections. `open_local_cluster` stops every process when the module's fixture closes
it, and the servers exit by themselves if this process dies.

After each attack, `check_unharmed` asserts what the boundary promises: every server
process still runs, a legitimate client (holding only the client key) writes and reads,
everything acknowledged before reads back, and no forged value is served.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from diskv_trio.client import Client, connect
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.net import Credentials, Identity, Role, RpcPool, open_rpc_pool

CLUSTER_NAME = "sec"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
LEGITIMATE_DEADLINE_S = 30.0
"""Bound on each legitimate operation after an attack (a healthy cluster takes milliseconds)."""

T = TypeVar("T")


class SharedCluster:
    """A local cluster (3 shardmasters, one joined group of 3 replicas) in its own thread.

    Attributes:
        acknowledged: key -> value of every legitimate put a test saw acknowledged; each
            later check reads all of them back.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.acknowledged: dict[str, str] = {}
        self._cluster: LocalCluster | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    @property
    def cluster(self) -> LocalCluster:
        assert self._cluster is not None
        return self._cluster

    @property
    def gid(self) -> int:
        return self.cluster.gids[0]

    @property
    def replicas(self) -> list[str]:
        return self.cluster.group_servers(self.gid)

    @property
    def masters(self) -> list[str]:
        return [s.name for s in self.cluster.servers.values() if s.role == "shardmaster"]

    def address(self, name: str) -> str:
        return self.cluster.spec(name).address

    def key(self, role: Role) -> bytes:
        credentials = self.cluster.credentials
        assert credentials is not None
        key = credentials.key(role)
        assert key is not None
        return key

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the shared cluster did not start within {START_TIMEOUT_S} s")
        if self._failure is not None:
            raise RuntimeError("the shared cluster failed to start") from self._failure

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(STOP_TIMEOUT_S)
        assert not self._thread.is_alive(), "the shared cluster did not stop"

    async def _main(self) -> None:
        try:
            async with open_local_cluster(
                self.data_dir, groups=1, replicas=3, cluster=CLUSTER_NAME
            ) as cluster:
                for gid in cluster.gids:
                    await cluster.join(gid)
                self._cluster = cluster
                self._stop = trio.Event()
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._ready.set()

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await `fn(*args)` in the cluster's own loop (e.g. ``cluster.kill``)."""
        call = functools.partial(trio.from_thread.run, fn, *args, trio_token=self._token)
        return await trio.to_thread.run_sync(call)

    async def kill_and_restart(self, name: str) -> None:
        """SIGKILL server `name`, start it again on its directory, wait until it answers."""
        await self.run(self.cluster.kill, name)
        assert not self.cluster.is_running(name)
        await self.run(self.cluster.restart, name)

    async def restart_exited(self) -> list[str]:
        """Start again every server whose process exited; return their names."""
        exited = [name for name in self.cluster.servers if not self.cluster.is_running(name)]
        for name in exited:
            await self.run(self.cluster.restart, name)
        return exited

    # -- connections a legitimate party holds ---------------------------------------------

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """A legitimate client holding the client key only."""
        keys = Credentials({Role.CLIENT: self.key(Role.CLIENT)})
        async with connect(self.cluster.masters, cluster=CLUSTER_NAME, credentials=keys) as kv:
            yield kv

    @asynccontextmanager
    async def pool(self, role: Role) -> AsyncIterator[RpcPool]:
        """An RPC pool of this test's loop holding `role`'s key only."""
        keys = Credentials({role: self.key(role)})
        identity = Identity(CLUSTER_NAME, role, f"test-{role.value}-{os.urandom(3).hex()}")
        async with open_rpc_pool(identity, credentials=keys) as pool:
            yield pool

    async def put_acknowledged(self, kv: Client, key: str, value: str) -> None:
        """A legitimate put, remembered once acknowledged."""
        with trio.fail_after(LEGITIMATE_DEADLINE_S):
            await kv.put(key, value)
        self.acknowledged[key] = value

    # -- the outcome every attack must leave --------------------------------------------

    def assert_every_server_alive(self) -> None:
        for spec in self.cluster.servers.values():
            assert spec.process is not None, spec.name
            assert spec.process.returncode is None, (
                f"{spec.name} exited with status {spec.process.returncode}; see {spec.log_path}"
            )

    async def check_unharmed(
        self, *, forged: Iterable[tuple[str, str]] = (), marker: str = "after"
    ) -> None:
        """Every server alive; a legitimate client writes, reads, finds every acknowledged
        value; every replica answers for every acknowledged key; no forged (key, value)
        is served by any replica."""
        self.assert_every_server_alive()
        forged = list(forged)
        async with self.client() as kv:
            fresh = f"{marker}-{os.urandom(4).hex()}"
            await self.put_acknowledged(kv, fresh, f"value of {fresh}")
            with trio.fail_after(LEGITIMATE_DEADLINE_S):
                for key, value in self.acknowledged.items():
                    assert await kv.get_text(key) == value, key
        # Each replica answers through its own log position: every one must serve the
        # acknowledged values, none a forged one.
        async with self.pool(Role.CLIENT) as pool:
            with trio.fail_after(LEGITIMATE_DEADLINE_S):
                for name in self.replicas:
                    for key in {fresh, *(key for key, _ in forged)}:
                        value = await replica_get(pool, self.address(name), key)
                        assert value == self.acknowledged.get(key, ""), (name, key, value)
                        assert (key, value) not in forged, (name, key, value)
        self.assert_every_server_alive()


async def replica_get(pool: RpcPool, address: str, key: str) -> str:
    """`key`'s value as the replica at `address` applies it (a get through its own log)."""
    while True:
        reply = await pool.call(address, "kv.op", {"op": "get", "key": key}, deadline_s=5.0)
        if reply.get("err") == "ErrNoKey":
            return ""
        if reply.get("err") == "OK":
            value = reply.get("value", b"")
            return value.decode() if isinstance(value, bytes) else str(value)
        await trio.sleep(0.05)  # e.g. ErrWrongGroup while the group takes the shard in


def shared_cluster_dir() -> Path:
    """A short directory under /tmp (AF_UNIX paths are limited to 107 bytes)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dks-", dir="/tmp"))
