"""The seeded simulation of `_simulation.py`, extended to the stable leader and its reads.

Every peer runs elections and heartbeats (`leader_mode`); the application proposes writes
at random peers (only the leader takes them), sends reads to random peers, and now and
then starts a classic instance somewhere (any peer may still `start(seq, v)`); it calls
`done` only on what it applied (the prefix decided at the peer), as `rsm/` does. Own-acceptor
calls travel through the network queue like any message (delayed, reordered, never lost),
so scripted schedules can hold them.

Checkers, beside agreement on every instance (`_simulation.py`):
- reads: a read records, when it arrives, the highest instance decided anywhere; when the
  peer answers it (every instance up to its index decided there) the index must reach it,
  else the read missed a write that completed before it started (stale read).
- liveness: after healing, a leader emerges and serves a write and a read in bounded time.
- linearizability: every write and read is recorded as a client history (`_history.py`)
  and, at the end of every run (also one that failed), judged by the project's checker; a
  history it finds not linearizable fails the run. `stale_read_check=False` leaves reads
  to the checker alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from diskv_trio.paxos import Fate, PaxosCore, Ready
from diskv_trio.paxos._parts import DEFAULT_PARTS, CoreParts
from diskv_trio.testing.linearizability import Verdict

from ._history import NOT_DECIDED, ClientHistory, HistoryCheck
from ._simulation import Simulation
from ._world import SimParams, SimPeer, SimulationFailure

NOOP = ["noop", -1]
LEADER_LIVENESS_TICKS_MAX = 1000  # 10 simulated seconds to elect and serve after healing
WRITE_RATE = 0.15  # per tick: a client write reaches a random peer
READ_RATE = 0.12  # per tick: a client read reaches a random peer
CLASSIC_START_RATE = 0.01  # per tick: a classic start(seq, v) somewhere


@dataclass(slots=True)
class ReadCheck:
    """One read: where it went and the highest instance decided anywhere when it arrived."""

    peer: int
    boot: int
    tick: int
    required: int
    index: int | None = None  # set when answered


class LeaderSimulation(Simulation):
    """A seeded group running the leader protocol; see the module docstring."""

    self_via_network = True
    REPLAY_TEST = "tests/paxos/test_paxos_leader_simulation.py"

    def __init__(
        self,
        seed: int,
        params: SimParams | None = None,
        *,
        manual: bool = False,
        lease_s: float | None = None,
        parts: CoreParts = DEFAULT_PARTS,
        start_tick: int = 0,
        stale_read_check: bool = True,
    ) -> None:
        self.lease_s = lease_s
        self.stale_read_check = stale_read_check
        self.history = ClientHistory()
        self.reads: dict[int, ReadCheck] = {}
        self._read_ids = itertools.count(1)
        self._confirmed: dict[int, list[tuple[int, int]]] = {}  # boot -> confirmed reads
        self.writes_taken = 0
        super().__init__(seed, params, manual=manual, parts=parts, start_tick=start_tick)
        if params is None:
            self.params.start_rate = CLASSIC_START_RATE

    # ---- actions ------------------------------------------------------------------------

    def propose(self, index: int, value: Any) -> bool:
        peer = self.peers[index]
        if not peer.alive:
            return False
        self.history.proposed(value, self.tick_count)
        ready = peer.core.propose(value, self.now)
        self._process(peer, ready)
        self.writes_taken += bool(ready.proposed)
        return bool(ready.proposed)

    def read(self, index: int) -> int | None:
        peer = self.peers[index]
        if not peer.alive:
            return None
        read_id = next(self._read_ids)
        required = max(self.decisions, default=-1)
        self.reads[read_id] = ReadCheck(index, peer.boot, self.tick_count, required)
        self.history.read_called(read_id, index, self.tick_count)
        self.trace.append(f"{self.tick_count}: read r{read_id} at {index} needs {required}")
        self._process(peer, peer.core.read(read_id, self.now))
        return read_id

    def done(self, index: int, seq: int) -> None:
        """The application forgets only what it applied, as `rsm/` does: `seq` is lowered to
        the end of the prefix decided at the peer (else a read's log could hold a hole)."""
        peer = self.peers[index]
        if not peer.alive:
            return
        core = peer.core
        applied = core.min() - 1
        while applied < seq and core.status(applied + 1)[0] is Fate.DECIDED:
            applied += 1
        if applied >= core.min():
            super().done(index, applied)

    def start(self, index: int, seq: int, value: Any) -> None:
        if self.peers[index].alive:
            self.history.started_at(seq, value, self.tick_count)
        super().start(index, seq, value)

    def campaign(self, index: int) -> None:
        peer = self.peers[index]
        if peer.alive:
            self._process(peer, peer.core.campaign(self.now))

    def heartbeat(self, index: int) -> None:
        peer = self.peers[index]
        if peer.alive:
            self._process(peer, peer.core.heartbeat(self.now))

    def leaders(self) -> list[int]:
        return [p.index for p in self.peers if p.alive and p.core.leading]

    def answered(self, read_id: int) -> bool:
        return self.reads[read_id].index is not None

    # ---- the run ------------------------------------------------------------------------

    def run(self) -> None:
        """`Simulation.run`, then the client history's check; after a failure the history
        recorded so far is checked too, and its verdict joins the failure's message."""
        try:
            super().run()
        except SimulationFailure as exc:
            check = self.history.check(self.decisions)
            if check.verdict is not Verdict.OK:
                raise SimulationFailure(f"{exc}; and {self._verdict_text(check)}") from exc
            raise
        try:
            self.check_history()
        except SimulationFailure as exc:
            raise SimulationFailure(f"{self.describe()} at tick {self.tick_count}: {exc}") from exc

    def check_history(self) -> HistoryCheck:
        """Judge the client history so far; SimulationFailure unless it is linearizable."""
        check = self.history.check(self.decisions)
        if check.verdict is not Verdict.OK:
            raise SimulationFailure(self._verdict_text(check))
        return check

    @staticmethod
    def _verdict_text(check: HistoryCheck) -> str:
        return (
            f"client history not linearizable (checker verdict: {check.verdict.value}; "
            f"{check.appends} appends, {check.reads} reads, "
            f"{check.register_ops} instance-register ops): {check.explanation}"
        )

    def step(self) -> None:
        super().step()
        for peer in self.peers:
            if peer.alive:
                self._answer_reads(peer)

    def heal_and_check_liveness(self) -> None:
        super().heal_and_check_liveness()
        deadline = self.tick_count + LEADER_LIVENESS_TICKS_MAX
        write = ["final", self.seed]
        read_id: int | None = None
        written = False
        while True:
            leaders = self.leaders()
            retry = (deadline - self.tick_count) % 100 == 0  # a dropped write is sent again
            if leaders and (not written or (retry and write not in self.decisions.values())):
                written = self.propose(leaders[0], write) or written
            if leaders and written and (read_id is None or self._read_refused(read_id)):
                read_id = self.read(leaders[0])
            if (
                written
                and read_id is not None
                and self.answered(read_id)
                and write in self.decisions.values()
            ):
                return
            if self.tick_count >= deadline:
                raise SimulationFailure(
                    f"no leader served a write and a read within {LEADER_LIVENESS_TICKS_MAX} "
                    f"ticks of healing: leaders {leaders}, written {written}, read {read_id}; "
                    f"{[p.core.statistics() for p in self.peers]}"
                )
            self.step()

    def _random_events(self) -> None:
        super()._random_events()
        alive = [peer.index for peer in self.peers if peer.alive]
        if alive and self.rng.random() < WRITE_RATE:
            index = self._client_target(alive)
            self.propose(index, ["w", index, self.tick_count])
        if alive and self.rng.random() < READ_RATE:
            self.read(self._client_target(alive))

    def _client_target(self, alive: list[int]) -> int:
        """A random peer, or (mostly) the leader it names, as the client's leader cache does."""
        index = self.rng.choice(alive)
        hint = self.peers[index].core.leader_hint()
        if hint is not None and self.rng.random() < 0.8:
            return hint
        return index

    # ---- reads --------------------------------------------------------------------------

    def _core_kwargs(self) -> dict[str, Any]:
        return {"leader_mode": True, "lease_s": self.lease_s, "noop": NOOP}

    def _on_ready(self, peer: SimPeer, ready: Ready) -> None:
        if ready.reads:
            self._confirmed.setdefault(peer.boot, []).extend(ready.reads)
            self._answer_reads(peer)
        for read_id in ready.reads_failed:
            self.reads[read_id].index = -2  # refused: the client asks elsewhere
            self.history.read_refused(read_id)

    def _read_refused(self, read_id: int) -> bool:
        return self.reads[read_id].index == -2

    def _answer_reads(self, peer: SimPeer) -> None:
        waiting = self._confirmed.get(peer.boot)
        if not waiting:
            return
        core = peer.core
        still: list[tuple[int, int]] = []
        for read_id, index in waiting:
            if any(core.status(s)[0] is Fate.PENDING for s in range(core.min(), index + 1)):
                still.append((read_id, index))
                continue
            check = self.reads[read_id]
            check.index = index
            self.trace.append(f"{self.tick_count}: read r{read_id} at {peer.index} -> {index}")
            self.history.read_returned(read_id, self.tick_count, self._applied(core, index))
            if self.stale_read_check and index < check.required:
                raise SimulationFailure(
                    f"stale read: r{read_id} at peer {peer.index} returned instances up to "
                    f"{index}, but instance {check.required} was decided before it arrived "
                    f"(tick {check.tick})"
                )
        self._confirmed[peer.boot] = still

    def _applied(self, core: PaxosCore, index: int) -> list[Any]:
        """The log a read at `core` returns: its values for instances 0..index (the agreed
        ones below its `min()`, which a snapshot would hold)."""
        log: list[Any] = []
        for seq in range(index + 1):
            fate, value = core.status(seq)
            if fate is not Fate.DECIDED:
                value = self.decisions.get(seq, NOT_DECIDED)
            log.append(value)
        return log

    def _check_decision(self, index: int, seq: int, value: Any) -> None:
        super()._check_decision(index, seq, value)
        self.history.decided(seq, self.tick_count)


__all__ = ["NOOP", "LeaderSimulation", "ReadCheck"]
