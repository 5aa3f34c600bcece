"""The simulated cluster: the real shardmaster and shardkv nodes, each on its own simulated
machine (a host on the simulated network and a simulated disk), in one Trio run.

Rules kept here:
- A server is assembled as `diskv serve` / `diskv shardmaster` assemble it (`NodeSettings`,
  `shardkv_node`, `shardmaster_node`), with a `Host` made of the machine's transport and disk
  instead of the operating system's: no switch in the server code knows it is simulated.
- Its first start bootstraps; every later one is a restart on whatever the disk holds, as
  `diskv cluster up` does, so a wiped disk is found lost and recovered from the peers.
- A crash is a power cut of the machine: the disk loses what was not synced and refuses the
  old boot, the network closes the host's connections and listeners, then the node's tasks
  are cancelled; whatever they raise while dying is expected and ignored. A node that stops
  on its own, or raises, when nobody crashed it is a failure of the run.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from diskv_trio import _entropy
from diskv_trio.kvproto import Sharding
from diskv_trio.net import Credentials, Role
from diskv_trio.rsm import Host, NodeSettings, ReplicaNode
from diskv_trio.shardkv import shardkv_node
from diskv_trio.shardmaster import shardmaster_node

from ._agreement import AgreementCheck, ReplicaTap
from ._disk import SimDisk
from ._network import HostTransport, SimNetwork
from ._trace import Trace

log = logging.getLogger("diskv.sim")

CLUSTER_NAME = "sim"
PORT = 7000
SHARDMASTER_GROUP = 0
FIRST_GID = 100
KEY_BYTES = 32
PID_STRIDE = 1000


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One server: its machine's name, what it runs and where it listens."""

    name: str
    role: str
    group: int
    index: int
    address: str


def layout(groups: int, replicas: int) -> list[ServerSpec]:
    """Three shardmasters (`sm0`..`sm2`) and `groups` shardkv groups (gid 100, 101, ...) of
    `replicas` each (`g100-0`, ...)."""
    specs = [
        ServerSpec(f"sm{i}", "shardmaster", SHARDMASTER_GROUP, i, f"sm{i}:{PORT}") for i in range(3)
    ]
    for number in range(groups):
        gid = FIRST_GID + number
        specs += [
            ServerSpec(f"g{gid}-{i}", "shardkv", gid, i, f"g{gid}-{i}:{PORT}")
            for i in range(replicas)
        ]
    return specs


class SimServer:
    """One server's machine and, while it runs, its node.

    Its process id is its position in the cluster times `PID_STRIDE` plus its boots, so it
    changes at each restart (as a real pid would) and is the same in every replay.
    """

    def __init__(
        self,
        spec: ServerSpec,
        number: int,
        disk: SimDisk,
        transport: HostTransport,
        tap: ReplicaTap,
    ) -> None:
        self.spec = spec
        self.disk = disk
        self.host = Host(transport, disk, self.process_id)
        self.tap = tap
        self._number = number
        self.node: ReplicaNode | None = None
        self.scope: trio.CancelScope | None = None
        self.stopped = trio.Event()
        self.crashing = False
        self.boots = 0

    def process_id(self) -> int:
        return PID_STRIDE * (self._number + 1) + self.boots

    @property
    def running(self) -> bool:
        return self.node is not None and not self.stopped.is_set()

    @property
    def serving(self) -> bool:
        """Up, serving and not recovering from a lost disk."""
        node = self.node
        return self.running and node is not None and node.serving.is_set() and not node.recovering


class SimCluster:
    """Every server of the simulated cluster, and the machines clients run on.

    Args:
        specs: the servers (see `layout`).
        network: the simulated network.
        rng: seeds each disk's own random source.
        trace: the run's trace.
        agreement: reads every replica's journal writes.
        sharding: the cluster's shard count and scheme.
    """

    def __init__(
        self,
        specs: list[ServerSpec],
        network: SimNetwork,
        rng: random.Random,
        trace: Trace,
        agreement: AgreementCheck,
        sharding: Sharding,
    ) -> None:
        self.network = network
        self.trace = trace
        self.sharding = sharding
        self.failures: list[str] = []
        self.credentials = Credentials({role: _entropy.token_bytes(KEY_BYTES) for role in Role})
        self.servers: dict[str, SimServer] = {}
        for number, spec in enumerate(specs):
            tap = agreement.tap(spec.group, spec.name)
            disk = SimDisk(spec.name, random.Random(rng.getrandbits(64)), trace, tap)
            transport = network.add_host(spec.name, spec.address)
            self.servers[spec.name] = SimServer(spec, number, disk, transport, tap)
        self._nursery: trio.Nursery | None = None

    # ---- layout -------------------------------------------------------------------------

    @property
    def masters(self) -> list[str]:
        return [s.spec.address for s in self.servers.values() if s.spec.role == "shardmaster"]

    @property
    def gids(self) -> list[int]:
        return sorted({s.spec.group for s in self.servers.values() if s.spec.role == "shardkv"})

    def group(self, gid: int) -> list[SimServer]:
        return [s for s in self.servers.values() if s.spec.group == gid]

    def addresses(self, gid: int) -> list[str]:
        return [s.spec.address for s in self.group(gid)]

    def client_host(self, name: str) -> HostTransport:
        """A machine for a client (or the operator): on the network, no address."""
        return self.network.add_host(name)

    # ---- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the servers' tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def _settings(self, server: SimServer, bootstrap: bool) -> NodeSettings:
        spec = server.spec
        peers = tuple(self.addresses(spec.group))
        return NodeSettings(
            cluster=CLUSTER_NAME,
            role=spec.role,
            group=spec.group,
            me=spec.index,
            peers=peers,
            directory=Path("/data") / spec.name,
            bootstrap=bootstrap,
            credentials=self.credentials,
            host=server.host,
        )

    async def start(self, name: str) -> None:
        """Start `name` on its disk: a bootstrap the first time, a restart afterwards."""
        server = self.servers[name]
        assert not server.running, name
        assert self._nursery is not None
        bootstrap = server.boots == 0
        server.boots += 1
        settings = self._settings(server, bootstrap)
        if server.spec.role == "shardmaster":
            server.node = shardmaster_node(settings, self.sharding)
        else:
            server.node = shardkv_node(settings, self.masters)
        server.crashing = False
        server.stopped = trio.Event()
        self.trace.event("start", name, "bootstrap" if bootstrap else "restart")
        await self._nursery.start(self._run_node, server)

    async def _run_node(self, server: SimServer, *, task_status: trio.TaskStatus[None]) -> None:
        node = server.node
        assert node is not None
        name = server.spec.name
        try:
            with trio.CancelScope() as scope:
                server.scope = scope
                task_status.started()
                await node.run()
                if not server.crashing:
                    self.failures.append(f"{name} stopped on its own")
        except BaseException as exc:  # noqa: BLE001 - a dying node raises anything
            if not server.crashing and not _only_cancelled(exc):
                self.failures.append(f"{name} failed: {_describe(exc)}")
                log.error("%s failed", name, exc_info=exc)
            elif not server.crashing:
                raise
        finally:
            server.stopped.set()

    async def crash(self, name: str, *, lose_disk: bool = False, corrupt: bool = False) -> None:
        """Cut the power of `name`'s machine; returns once it is down.

        Args:
            lose_disk: lose its disk too.
            corrupt: damage its journal instead (a disk loss when there is nothing to damage).
        """
        server = self.servers[name]
        if not server.running:
            return
        server.crashing = True
        server.disk.crash()
        directory = str(self._settings(server, False).directory)
        if corrupt and server.disk.corrupt_journal(directory):
            server.tap.forget()
        elif lose_disk or corrupt:
            server.disk.wipe()
            server.tap.forget()
        self.network.host_down(name)
        assert server.scope is not None
        server.scope.cancel()
        await server.stopped.wait()
        self.trace.event("down", name)

    async def restart(self, name: str) -> None:
        """Power `name`'s machine on again and start its server."""
        server = self.servers[name]
        if server.running:
            return
        server.disk.power_on()
        self.network.host_up(name)
        await self.start(name)

    def down(self) -> list[str]:
        return [name for name, server in self.servers.items() if not server.running]


@asynccontextmanager
async def running_cluster(
    specs: list[ServerSpec],
    sharding: Sharding,
    rng: random.Random,
    trace: Trace,
    agreement: AgreementCheck,
) -> AsyncIterator[SimCluster]:
    """A network and a cluster of `specs` drawn from `rng` (in a fixed order), running with
    every server started, until the block ends; then all of it is cancelled."""
    network = SimNetwork(random.Random(rng.getrandbits(64)), trace)
    cluster = SimCluster(specs, network, rng, trace, agreement, sharding)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(network.run)
        await nursery.start(cluster.run)
        for name in cluster.servers:
            await cluster.start(name)
        yield cluster
        nursery.cancel_scope.cancel()


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(each) for each in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(each) for each in exc.exceptions if not _only_cancelled(each))
    return f"{type(exc).__name__}: {exc}"
