"""How a replica catches up from its peers: disk-loss recovery, state transfer when the log
it needs was forgotten by all, and (classic Paxos only) the idle progress probe.

A mixin of `ReplicaNode`: the same object, its catching-up half in its own file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

import journal as journal_pkg
from diskv_trio._ratelog import describe
from diskv_trio.net import NetError, RpcPool
from diskv_trio.paxos import INSTANCE_AHEAD_MAX

from ._alarm import NOSPACE_RETRY_S
from ._identity import write_identity
from ._rsm import NOOP, ReplicatedStateMachine, StateMachine
from ._state_transfer import StateTransferError, fetch_state

if TYPE_CHECKING:
    from ._node import MachineFactory, NodeSettings

log = logging.getLogger("diskv.node")

PROGRESS_PROBE_S = 1.0
"""How often a replica asks its peers how far they have applied (one small call each)."""

STATE_FETCH_RETRY_S = 0.1
"""First pause between rounds of state-fetch attempts while no intact peer answers."""

STATE_FETCH_RETRY_MAX_S = 2.0
"""Longest pause between rounds: each attempt makes a peer encode its whole state."""


async def compact_until_written(rsm: ReplicatedStateMachine) -> None:
    """Snapshot now, waiting out a full disk: what follows relies on the snapshot."""
    while True:
        try:
            await rsm.compact()
            return
        except journal_pkg.JournalNoSpaceError:
            await trio.sleep(NOSPACE_RETRY_S)


class Recovery:
    """The catching-up methods of `ReplicaNode` (see the module docstring)."""

    settings: NodeSettings
    pool: RpcPool | None
    rsm: ReplicatedStateMachine | None
    recovering: bool
    _machine_factory: MachineFactory

    async def _recover(self, rsm: ReplicatedStateMachine) -> None:
        """Fence (in Paxos), fetch the applied state, install it, then claim the directory."""
        log.info("%s: recovering from disk loss", self.settings.node_id)
        await rsm.peer.wait_voting()
        applied, machine = await self._fetch_best_state()
        rsm.install(machine, applied)
        await compact_until_written(rsm)
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
        disk = self.settings.host.disk
        while True:
            try:
                await disk.run_sync(write_identity, directory, self.settings.identity, disk.fs)
                break
            except OSError as exc:
                if not journal_pkg.is_no_space(exc):
                    raise
                log.warning("%s: cannot write the identity yet: %s", self.settings.node_id, exc)
                await trio.sleep(NOSPACE_RETRY_S)
        await disk.run_sync(lambda: journal_pkg.clear_force_repaired(directory, fs=disk.fs))
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
            await compact_until_written(rsm)

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
