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
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import trio

import journal as journal_pkg
from diskv_trio._dirlock import LOCK_FILE_NAME, lock_directory
from diskv_trio._private_files import make_private_directory, tighten_tree
from diskv_trio._ratelog import describe
from diskv_trio.net import (
    PEERS,
    PEERS_AND_OPERATORS,
    ApplicationError,
    CallContext,
    Credentials,
    Faults,
    Handler,
    Identity,
    NetError,
    Role,
    RpcPool,
    RpcServer,
    open_rpc_pool,
)
from diskv_trio.paxos import INSTANCE_AHEAD_MAX

from ._alarm import NOSPACE_RETRY_S
from ._identity import (
    ServerIdentity,
    check_identity,
    read_identity,
    write_atomically,
    write_identity,
)
from ._paxos_wiring import new_paxos_peer, paxos_handlers, restore_paxos
from ._rsm import NOOP, ReplicatedStateMachine, StateMachine
from ._state_transfer import StateTransferError, StateTransferSource, fetch_state
from ._storage import ServerStorage

log = logging.getLogger("diskv.node")

PAXOS_CALL_DEADLINE_S = 1.0
"""Deadline of one Paxos RPC: a peer silent for this long is treated as unreachable."""

PROGRESS_PROBE_S = 1.0
"""How often a replica asks its peers how far they have applied (one small call each)."""

STATE_FETCH_RETRY_S = 0.1
"""First pause between rounds of state-fetch attempts while no intact peer answers."""

STATE_FETCH_RETRY_MAX_S = 2.0
"""Longest pause between rounds: each attempt makes a peer encode its whole state."""


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


async def _compact_until_written(rsm: ReplicatedStateMachine) -> None:
    """Snapshot now, waiting out a full disk: what follows relies on the snapshot."""
    while True:
        try:
            await rsm.compact()
            return
        except journal_pkg.JournalNoSpaceError:
            await trio.sleep(NOSPACE_RETRY_S)


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

    @property
    def node_id(self) -> str:
        return f"{self.role}-{self.group}-{self.me}"

    @property
    def identity(self) -> ServerIdentity:
        return ServerIdentity(self.cluster, self.role, self.group, self.me)


def _move_aside(directory: Path, reason: str) -> Path | None:
    """Move every file of `directory` into a new `lost-*` folder; return it (None if empty)."""
    entries = [p for p in directory.iterdir() if not p.name.startswith("lost-")]
    entries = [p for p in entries if not p.is_socket() and p.name != LOCK_FILE_NAME]
    if not entries:
        return None
    target = directory / f"lost-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    target.mkdir(mode=0o700)
    for entry in entries:
        shutil.move(str(entry), target / entry.name)
    write_atomically(target / "REASON", (reason + "\n").encode())
    log.warning("moved the previous contents of %s to %s: %s", directory, target, reason)
    return target


def open_directory(settings: NodeSettings) -> tuple[journal_pkg.Journal, bool]:
    """Open the node's journal; return it and whether the node lost its disk.

    Raises:
        IdentityMismatchError: the directory belongs to another server.
        OSError: the directory cannot be created or read.
    """
    directory = settings.directory
    make_private_directory(directory)
    tighten_tree(directory)
    found = read_identity(directory)
    if found is not None:
        check_identity(found, settings.identity, directory)
        if journal_pkg.is_force_repaired(directory):
            _move_aside(directory, "journal was force-repaired; treating the disk as lost")
            return journal_pkg.Journal.open(directory), True
        try:
            return journal_pkg.Journal.open(directory), False
        except journal_pkg.CorruptJournalError as exc:
            _move_aside(directory, f"journal is corrupt: {exc}")
            return journal_pkg.Journal.open(directory), True
    if settings.bootstrap:
        opened = journal_pkg.Journal.open(directory)
        write_identity(directory, settings.identity)
        return opened, False
    _move_aside(directory, "no identity file and not bootstrapping: the disk was lost")
    return journal_pkg.Journal.open(directory), True


MachineFactory = Callable[[dict[str, Any] | None], StateMachine]
HandlerFactory = Callable[["ReplicaNode"], Mapping[str, tuple[Handler, frozenset[Role]]]]
"""The application's methods, each with the roles it is served to."""


class ReplicaNode:
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

    def _application_state(self) -> dict[str, Any]:
        return self.require_serving().application_state()

    def require_serving(self) -> ReplicatedStateMachine:
        """The state machine, or a typed error for callers while recovering."""
        if not self.serving.is_set() or self.rsm is None:
            raise NotServingError()
        return self.rsm

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
        lock = await trio.to_thread.run_sync(lock_directory, settings.directory, settings.node_id)
        with lock:
            await self._run_locked(task_status)

    async def _run_locked(self, task_status: trio.TaskStatus[None]) -> None:
        settings = self.settings
        opened, disk_lost = await trio.to_thread.run_sync(open_directory, settings)
        self.recovering = disk_lost
        with opened:
            storage = ServerStorage(opened)
            self.storage = storage
            state = storage.loaded_state() or {}
            restored = restore_paxos(storage)
            machine = self._machine_factory(state.get("machine"))
            applied = int(state.get("applied", -1))
            identity = Identity(settings.cluster, Role.PEER, settings.node_id)
            async with open_rpc_pool(
                identity, credentials=settings.credentials, faults=self.faults
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
                    nursery.start_soon(self._probe_peers_progress, rsm)
                    nursery.start_soon(self._catch_up_when_behind, rsm)

    # ---- disk-loss recovery ---------------------------------------------------------

    async def _recover(self, rsm: ReplicatedStateMachine) -> None:
        """Fence (in Paxos), fetch the applied state, install it, then claim the directory."""
        log.info("%s: recovering from disk loss", self.settings.node_id)
        await rsm.peer.wait_voting()
        applied, machine = await self._fetch_best_state()
        rsm.install(machine, applied)
        await _compact_until_written(rsm)
        log.info("%s: installed a peer's state at instance %d", self.settings.node_id, applied)

    async def _finish_recovery(self, rsm: ReplicatedStateMachine) -> None:
        """Claim the directory once the applied state reaches the fence's floor.

        Until then the replica is not a whole member: instances up to the floor may be
        known only to others, and losing another replica now could lose them. `rsm.status`
        says "recovering" meanwhile, and a crash before the identity is written restarts
        the whole recovery.
        """
        floor = int(rsm.peer.statistics()["floor"])
        await rsm.wait_applied(floor)
        directory = self.settings.directory
        while True:
            try:
                await trio.to_thread.run_sync(write_identity, directory, self.settings.identity)
                break
            except OSError as exc:
                if not journal_pkg.is_no_space(exc):
                    raise
                log.warning("%s: cannot write the identity yet: %s", self.settings.node_id, exc)
                await trio.sleep(NOSPACE_RETRY_S)
        await trio.to_thread.run_sync(journal_pkg.clear_force_repaired, directory)
        self.recovering = False
        log.info("%s: recovered through instance %d", self.settings.node_id, rsm.applied)

    async def _probe_peers_progress(self, rsm: ReplicatedStateMachine) -> None:
        """Learn, even when the group is idle, that peers have applied instances we lack.

        A replica back from a crash hears of new instances only from new agreements, and
        calls to it may fail for a while after it returns (its peers back off). Asking the
        peers how far they have applied, and proposing a no-op in that (decided) instance,
        teaches this replica where the log ends; the apply loop then fills the holes.
        """
        while True:
            await trio.sleep(PROGRESS_PROBE_S)
            applied = await self._peers_applied(deadline_s=1.0)
            if applied and max(applied.values()) > rsm.peer.max():
                rsm.peer.start(max(applied.values()), NOOP)

    async def _peers_applied(self, *, deadline_s: float) -> dict[str, int]:
        """How far each serving peer has applied, asked of all at once; silent ones left out."""
        assert self.pool is not None and self.rsm is not None
        pool = self.pool
        rsm_max = self.rsm.peer.max
        applied: dict[str, int] = {}

        async def ask(address: str) -> None:
            try:
                reply = await pool.call(address, "rsm.status", {}, deadline_s=deadline_s)
            except NetError:  # any failure to ask (busy, refused, broken) just leaves it out
                return
            value = reply.get("applied")
            # A peer's figure is believed only within the bound Paxos itself accepts.
            limit = max(rsm_max(), 0) + INSTANCE_AHEAD_MAX
            if reply.get("serving") and type(value) is int and -1 <= value <= limit:
                applied[address] = value

        async with trio.open_nursery() as nursery:
            for i, address in enumerate(self.settings.peers):
                if i != self.settings.me:
                    nursery.start_soon(ask, address)
        return applied

    async def _catch_up_when_behind(self, rsm: ReplicatedStateMachine) -> None:
        """Install a peer's applied state whenever the log we need was forgotten by all."""
        while True:
            await rsm.behind.wait()
            applied, machine = await self._fetch_best_state(at_least=rsm.applied + 1)
            log.warning(
                "%s: instance %d was forgotten everywhere; installing a peer's state at %d",
                self.settings.node_id,
                rsm.applied + 1,
                applied,
            )
            rsm.install(machine, applied)
            await _compact_until_written(rsm)

    async def _fetch_best_state(self, at_least: int = -1) -> tuple[int, StateMachine]:
        """Fetch the applied state of the most advanced serving peer, as (applied, machine).

        A state that does not restore into a machine is refused like a failed transfer,
        and the next peer is tried: one bad peer cannot stop a recovering replica.

        Asks every other replica how far it has applied (a cheap status call), then fetches
        the state, in chunks, from the most advanced one; retries with a growing pause
        while no peer can serve it.

        Args:
            at_least: ignore peers that have applied fewer instances than this.
        """
        assert self.pool is not None
        pool = self.pool
        pause = STATE_FETCH_RETRY_S
        while True:
            applied = await self._peers_applied(deadline_s=2.0)
            for address in sorted(applied, key=applied.__getitem__, reverse=True):
                if applied[address] < at_least:
                    break
                try:
                    state = await fetch_state(pool, address)
                except (NetError, StateTransferError) as exc:
                    log.warning("state transfer from %s failed: %s", address, exc)
                    continue
                if state["applied"] < at_least or "machine" not in state:
                    continue
                try:
                    return int(state["applied"]), self._machine_factory(state["machine"])
                except (ValueError, TypeError, KeyError) as exc:
                    log.warning("state from %s does not restore: %s", address, describe(exc))
            await trio.sleep(pause)
            pause = min(pause * 2, STATE_FETCH_RETRY_MAX_S)

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
            "pid": os.getpid(),
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
