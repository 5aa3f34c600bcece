"""A replica node: one server process's directory, journal, Paxos peer, RPC server and log.

Rules kept here (DESIGN.md sections 4 and 6):
- Start-up decides between a fresh start (`bootstrap` on a directory without an identity),
  a restart with the disk intact (identity present, journal replays), and a disk loss
  (no identity without `bootstrap`, a journal that is corrupt rather than torn, or the
  forced-repair marker of `diskv-journal repair --force`).
- After a disk loss the node keeps whatever it found in a `lost-*` folder, starts on an
  empty journal, lets Paxos fence its peers, then fetches the applied state from the most
  advanced intact peer, installs it and only then writes its identity and serves.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import trio

import journal as journal_pkg
from diskv_trio._dirlock import LOCK_FILE_NAME
from diskv_trio.net import (
    PEERS,
    PEERS_AND_OPERATORS,
    ApplicationError,
    CallContext,
    Credentials,
    Faults,
    Handler,
    Identity,
    Role,
    RpcPool,
    RpcServer,
    open_rpc_pool,
)

from ._host import SYSTEM_HOST, Host
from ._identity import (
    ServerIdentity,
    check_identity,
    read_identity,
    write_atomically,
    write_identity,
)
from ._paxos_wiring import new_paxos_peer, paxos_handlers, restore_paxos
from ._recovery import Recovery
from ._rsm import ReplicatedStateMachine, StateMachine
from ._state_transfer import StateTransferSource
from ._storage import ServerStorage

log = logging.getLogger("diskv.node")

PAXOS_CALL_DEADLINE_S = 1.0
"""Deadline of one Paxos RPC: a peer silent for this long is treated as unreachable."""

class NotServingError(ApplicationError):
    """Raised to callers while the node is still recovering."""

    def __init__(self) -> None:
        super().__init__("ErrNotReady", "replica is recovering and does not serve yet")


class NoSpaceError(ApplicationError):
    """Raised to writers while the NOSPACE alarm is raised (the replica's disk is full)."""

    def __init__(self) -> None:
        super().__init__(
            "ErrNoSpace", "this replica's disk is full: ops are refused until space returns"
        )


@dataclass(frozen=True)
class NodeSettings:
    """What a replica node needs to know to start."""

    cluster: str
    role: str
    group: int
    me: int
    peers: tuple[str, ...]
    directory: Path
    bootstrap: bool = False
    unreliable: bool = False
    credentials: Credentials | None = None
    host: Host = SYSTEM_HOST
    """The network and disk the node runs on (a simulation gives its own)."""
    leader_mode: bool = True
    """Ops reach the log through a stable leader; False runs classic Paxos per entry."""
    lease_s: float | None = None
    """Read leases of this length (leader mode only); None: every read has its round."""

    @property
    def node_id(self) -> str:
        return f"{self.role}-{self.group}-{self.me}"

    @property
    def identity(self) -> ServerIdentity:
        return ServerIdentity(self.cluster, self.role, self.group, self.me)


def _move_aside(directory: Path, reason: str, host: Host = SYSTEM_HOST) -> Path | None:
    """Move every file of `directory` into a new `lost-*` folder; return it (None if empty).

    The folder is named by the wall-clock time and pid, for the operator who finds it.
    """
    fs = host.disk.fs
    entries = [
        name
        for name in sorted(fs.list_dir(str(directory)))
        if not name.startswith("lost-")
        and name != LOCK_FILE_NAME
        and (fs.is_file(str(directory / name)) or fs.is_dir(str(directory / name)))
    ]
    if not entries:
        return None
    base = f"lost-{time.strftime('%Y%m%dT%H%M%S')}-{host.process_id()}"
    target = directory / base
    attempt = 0
    while fs.exists(str(target)):
        attempt += 1
        target = directory / f"{base}.{attempt}"
    fs.make_dirs(str(target))
    for name in entries:
        fs.rename(str(directory / name), str(target / name))
    write_atomically(target / "REASON", (reason + "\n").encode(), fs)
    fs.sync_dir(str(directory))
    log.warning("moved the previous contents of %s to %s: %s", directory, target, reason)
    return target


def open_directory(settings: NodeSettings) -> tuple[journal_pkg.Journal, bool]:
    """Open the node's journal; return it and whether the node lost its disk.

    Raises:
        IdentityMismatchError: the directory belongs to another server.
        OSError: the directory cannot be created or read.
    """
    directory = settings.directory
    disk = settings.host.disk
    fs = disk.fs
    disk.prepare_directory(directory)
    found = read_identity(directory, fs)
    if found is not None:
        check_identity(found, settings.identity, directory)
        if journal_pkg.is_force_repaired(directory, fs=fs):
            reason = "journal was force-repaired; treating the disk as lost"
            _move_aside(directory, reason, settings.host)
            return journal_pkg.Journal.open(directory, fs=fs), True
        try:
            return journal_pkg.Journal.open(directory, fs=fs), False
        except journal_pkg.CorruptJournalError as exc:
            _move_aside(directory, f"journal is corrupt: {exc}", settings.host)
            return journal_pkg.Journal.open(directory, fs=fs), True
    if settings.bootstrap:
        opened = journal_pkg.Journal.open(directory, fs=fs)
        write_identity(directory, settings.identity, fs)
        return opened, False
    reason = "no identity file and not bootstrapping: the disk was lost"
    _move_aside(directory, reason, settings.host)
    return journal_pkg.Journal.open(directory, fs=fs), True


MachineFactory = Callable[[dict[str, Any] | None], StateMachine]
HandlerFactory = Callable[["ReplicaNode"], Mapping[str, tuple[Handler, frozenset[Role]]]]
"""The application's methods, each with the roles it is served to."""


class ReplicaNode(Recovery):
    """Runs one replica until cancelled.

    `run` reports started once the replica answers RPCs (Paxos included); `serving` is set
    once it may answer clients, which after a disk loss is only when recovery is complete.
    """

    def __init__(
        self,
        settings: NodeSettings,
        machine_factory: MachineFactory,
        handler_factory: HandlerFactory | None = None,
    ) -> None:
        self.settings = settings
        self._machine_factory = machine_factory
        self._handler_factory = handler_factory
        self.faults = Faults(unreliable=settings.unreliable)
        self.serving = trio.Event()
        self.recovering = False
        self.rsm: ReplicatedStateMachine | None = None
        self.storage: ServerStorage | None = None
        self.pool: RpcPool | None = None
        self._transfer_source = StateTransferSource(self._application_state)
        self._last_campaign = -math.inf

    def _application_state(self) -> dict[str, Any]:
        return self.require_serving().application_state()

    def require_serving(self) -> ReplicatedStateMachine:
        """The state machine, or a typed error for callers while recovering."""
        if not self.serving.is_set() or self.rsm is None:
            raise NotServingError()
        return self.rsm

    def campaign_at_most_every(self, interval_s: float) -> None:
        """Run for leader of the group, unless this replica did within `interval_s`."""
        now = trio.current_time()
        if self.rsm is not None and now - self._last_campaign >= interval_s:
            self._last_campaign = now
            self.rsm.peer.campaign()

    def require_writable(self) -> ReplicatedStateMachine:
        """Like `require_serving`, for ops placed in the log: refused while the NOSPACE
        alarm is raised.

        This replica's Paxos messages wait behind records it cannot sync, so any op through
        the log (a get included) would only hang here; the client asks another replica.
        Reads from the applied state (status, state transfer, shard pulls) go on.
        """
        rsm = self.require_serving()
        if self.storage is not None and self.storage.alarm.active:
            raise NoSpaceError()
        return rsm

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Lock the directory, open the journal, serve until cancelled.

        Raises:
            DirectoryInUseError: another live process serves this directory.
            IdentityMismatchError, OSError: as `open_directory`.
        """
        settings = self.settings
        disk = settings.host.disk
        lock = await disk.run_sync(disk.lock_directory, settings.directory, settings.node_id)
        with lock:
            await self._run_locked(task_status)

    async def _run_locked(self, task_status: trio.TaskStatus[None]) -> None:
        settings = self.settings
        opened, disk_lost = await settings.host.disk.run_sync(open_directory, settings)
        self.recovering = disk_lost
        with opened:
            storage = ServerStorage(opened, run_sync=settings.host.disk.run_sync)
            self.storage = storage
            state = storage.loaded_state() or {}
            restored = restore_paxos(storage)
            machine = self._machine_factory(state.get("machine"))
            applied = int(state.get("applied", -1))
            identity = Identity(settings.cluster, Role.PEER, settings.node_id)
            async with open_rpc_pool(
                identity,
                credentials=settings.credentials,
                faults=self.faults,
                transport=settings.host.transport,
            ) as pool:
                self.pool = pool
                peer = new_paxos_peer(
                    storage=storage,
                    pool=pool,
                    addresses=settings.peers,
                    me=settings.me,
                    node_ids=[replace(settings, me=i).node_id for i in range(len(settings.peers))],
                    restored=restored,
                    recovering=disk_lost,
                    leader_mode=settings.leader_mode,
                    lease_s=settings.lease_s,
                )
                rsm = ReplicatedStateMachine(
                    peer=peer, machine=machine, applied=applied, storage=storage
                )
                self.rsm = rsm
                server = RpcServer(
                    settings.peers[settings.me],
                    identity,
                    {**paxos_handlers(peer), "rsm.fetch_state": self._handle_fetch_state},
                    roles=PEERS,
                    credentials=settings.credentials,
                    faults=self.faults,
                    transport=settings.host.transport,
                )
                server.add_handlers({"rsm.status": self._handle_status}, roles=PEERS_AND_OPERATORS)
                if self._handler_factory is not None:
                    for method, (handler, roles) in self._handler_factory(self).items():
                        server.add_handlers({method: handler}, roles=roles)
                async with trio.open_nursery() as nursery:
                    await nursery.start(server.serve)
                    await nursery.start(peer.run)
                    task_status.started()
                    if disk_lost:
                        await self._recover(rsm)
                    await nursery.start(rsm.run)
                    self.serving.set()
                    if disk_lost:
                        nursery.start_soon(self._finish_recovery, rsm)
                    if not settings.leader_mode:  # the leader teaches followers itself
                        nursery.start_soon(self._probe_peers_progress, rsm)
                    else:
                        nursery.start_soon(self._lead_only_with_space, rsm, storage)
                    nursery.start_soon(self._catch_up_when_behind, rsm)

    async def _lead_only_with_space(self, rsm: ReplicatedStateMachine, storage: ServerStorage) -> None:
        """A replica whose disk is full steps down and does not run for leader until space
        returns: it refuses every op, so as leader it would stop its whole group."""
        while True:
            await storage.alarm.raised.wait_value(True)
            rsm.peer.set_eligible(False)
            await storage.alarm.raised.wait_value(False)
            rsm.peer.set_eligible(True)

    async def _handle_fetch_state(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        self.require_serving()
        return self._transfer_source.handle(args)

    async def _handle_status(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "node": self.settings.node_id,
            "role": self.settings.role,
            "group": self.settings.group,
            "me": self.settings.me,
            "state": "recovering" if self.recovering else "intact",
            "serving": self.serving.is_set(),
            "pid": self.settings.host.process_id(),
        }
        if self.rsm is not None:
            stats |= {
                "applied": self.rsm.applied,
                "max": self.rsm.peer.max(),
                "min": self.rsm.peer.min(),
                "paxos": self.rsm.peer.statistics(),
            }
            describe = getattr(self.rsm.machine, "describe", None)
            if callable(describe):
                stats["machine"] = describe()
        if self.storage is not None:
            stats["journal_bytes"] = self.storage.bytes_on_disk()
            stats["alarm"] = self.storage.alarm.describe()
        return stats
