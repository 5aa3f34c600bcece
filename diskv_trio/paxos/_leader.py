"""The stable leader (DESIGN.md section 4, "The fast path" and "Reads without a log entry").

An optimisation of the same Paxos: it skips phase 1 per instance, never changes what an
acceptor may do, and safety never depends on there being one leader.

Rules kept here:
1. Election: a follower that hears no heartbeat it answered "ok" for a random election
   timeout sends one range prepare `(b, from n)`, n = the first instance it does not know
   decided, b above every ballot it has seen or used.
2. Takeover: a promise counts for instance i only if its start <= i, so the leader acts
   from L = the quorum-th smallest start; below L it runs classic no-ops. In every
   instance from L up to the highest reported one (T) it proposes the value of the
   highest accepted ballot reported, or a no-op; then new entries, `accept` alone, up to
   `leader_window_max` in flight.
3. "Chosen up to c at b" rides on accepts and heartbeats; c covers no instance the leader
   sent an accept for at b unless a majority accepted it at b (or it learned it decided
   with its own value). A leader that learns an instance decided with another value than
   the one it sent at b has been replaced: it steps down at once.
4. A rejection, a stale epoch, or a heartbeat ballot above ours: step down.
5. Reads (ReadIndex): a read takes c = max(highest instance known decided, T, L - 1) and
   is confirmed by a heartbeat round sent after it arrived, answered "ok" by a majority;
   the leader's own acceptor counts only if it promised nothing above b, else it steps
   down. With leases, a round's majority lets reads go without a round until
   sent_at + lease - drift.

Each rule a test breaks on purpose is one small method, overridden in
`tests/paxos/broken_rules.py`.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _limits
from ._ballot import Ballot
from ._catch_up import CatchUp
from ._messages import (
    Accepted,
    AlreadyDecided,
    Heartbeat,
    HeartbeatReply,
    LeaderAccept,
    RangePrepare,
    RangePromise,
    Rejected,
    Reply,
    StaleEpoch,
)
from ._reads import ReadRound, ReadRounds

if TYPE_CHECKING:
    from ._core import PaxosCore

HOLES_CLASSIC_MAX = 64
"""Instances below L (not covered by the promises) the leader starts classic no-ops in at a
takeover; the application's hole filler handles any further ones."""


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(slots=True)
class InFlight:
    """An entry the leader sent accepts for at its ballot and has not seen chosen."""

    value: Any
    acks: set[int] = field(default_factory=set)
    resend_at: float = 0.0


class Leader(ReadRounds):
    """Leadership of one peer: the follower's election timer, candidacy, and leading."""

    def __init__(self, core: PaxosCore, rng: random.Random) -> None:
        self._core = core
        self._rng = rng
        self.role = Role.FOLLOWER
        self.ballot: Ballot | None = None
        self.heard: Ballot | None = None  # the highest leader ballot we answered "ok"
        self.top_seen: Ballot | None = None  # the highest ballot seen promised anywhere
        self.election_at = math.inf
        self.want_campaign = False
        self.from_seq = 0
        self.promises: dict[int, int] = {}  # peer -> first instance its promise covers
        self.answered: set[int] = set()
        self.reports: dict[int, tuple[Ballot, Any]] = {}
        self.reported_top = -1  # T
        self.covered_from = 0  # L
        self.read_floor = -1  # max(T, L - 1)
        self.next_seq = 0
        self.inflight: dict[int, InFlight] = {}
        self.queue: deque[Any] = deque()
        self.wake_at = math.inf  # candidate timeout, or the next heartbeat
        self.rounds: dict[int, ReadRound] = {}
        self.round_count = 0
        self.pending_reads: list[tuple[int, int]] = []
        self.lease_until = -math.inf
        self.catch_up = CatchUp(core)
        self.eligible = True  # False: never campaign (e.g. the disk is full)

    # ---- rules tests may break ----------------------------------------------------------

    def covered_from_promises(self) -> int | None:
        """Rule 2: L, the first instance a majority of promises covers, or None."""
        quorum = self._core.quorum
        if len(self.promises) < quorum:
            return None
        return sorted(self.promises.values())[quorum - 1]

    def chosen_upto(self) -> int:
        """Rule 3: c for accepts and heartbeats at our ballot."""
        return min(self.inflight) - 1 if self.inflight else self.next_seq - 1

    def steps_down_when_replaced(self) -> bool:
        return True

    # ---- queries ------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.role is Role.LEADER

    def hint(self) -> int | None:
        """The leader this peer believes in, or None."""
        if self.leading:
            return self._core.me
        return None if self.heard is None else self.heard.peer

    def wake_times(self) -> list[float]:
        times = [self.election_at, self.wake_at]
        times.extend(entry.resend_at for entry in self.inflight.values())
        times.extend(r.sent_at + _limits.read_round_timeout_s for r in self.rounds.values())
        return times

    # ---- inputs -------------------------------------------------------------------------

    def boot(self, now: float) -> None:
        self._reset_election(now)

    def see(self, ballot: Ballot | None) -> None:
        if ballot is not None and (self.top_seen is None or ballot > self.top_seen):
            self.top_seen = ballot

    def follow(self, ballot: Ballot, now: float) -> None:
        """We answered "ok" to the leader of `ballot` (or accepted from it)."""
        self.see(ballot)
        if self.heard is None or ballot >= self.heard:
            self.heard = ballot
            if not self.leading:
                self._reset_election(now)
        # A leader of a lower ballot learns it was replaced from its own acceptor at its
        # next read round, from a follower's answer, or from a conflicting decision.

    def campaign(self, now: float) -> None:
        """Rule 1: send a range prepare with a ballot above every one seen."""
        core = self._core
        if core.recovering or not self.eligible:
            self._reset_election(now)
            return
        if core.fencer.needed():
            self.want_campaign = True  # `resume` campaigns once the fence completes
            self._reset_election(now)
            core.fencer.request_intact(now)
            return
        self.want_campaign = False
        self.step_down(now)
        epochs = core.epochs
        self.see(core.promised_max)
        for proposal in core.proposer.proposals.values():
            self.see(proposal.ballot)
        top = self.top_seen
        epoch = epochs.established
        round_ = top.round + 1 if top is not None and top.epoch == epoch else 1
        if top is not None and top.epoch > epoch:
            epochs.establish(top.epoch, core.out)  # seen promised: persisted on a majority
            epoch = epochs.established
            round_ = top.round + 1
        ballot = Ballot(epoch, round_, core.me)
        assert top is None or ballot > top
        self.see(ballot)
        self.role = Role.CANDIDATE
        self.ballot = ballot
        seq = core.min_seq
        while core.is_decided(seq):
            seq += 1
        self.from_seq = seq
        self.promises = {}
        self.answered = set()
        self.reports = {}
        self.reported_top = -1
        self.election_at = math.inf
        self.wake_at = now + _limits.round_timeout_s
        for peer in range(core.peer_count):
            core.out.send(peer, RangePrepare(core.me, core.advertised_done, seq, ballot))

    def propose(self, value: Any, now: float) -> bool:
        """Queue `value` for the next free instance; False if not leading or the queue is full."""
        if not self.leading or len(self.queue) >= _limits.leader_queue_max:
            return False
        self.queue.append(value)
        self._fill_window(now)
        return True

    def tick(self, now: float) -> None:
        if self.role is Role.FOLLOWER and self.election_at <= now:
            self.campaign(now)
        elif self.role is Role.CANDIDATE and self.wake_at <= now:
            self._candidate_failed(now)
        elif self.leading:
            self._tick_leading(now)

    def resume(self, now: float) -> None:
        """The fence this peer ran to campaign completed."""
        if self.want_campaign:
            self.campaign(now)

    def on_learned(self, seq: int, value: Any, now: float) -> None:
        """Rule 3's step-down; an entry decided with our value leaves the window."""
        entry = self.inflight.get(seq)
        if entry is None:
            return
        if entry.value is value or entry.value == value:
            del self.inflight[seq]
            self._fill_window(now)
        elif self.steps_down_when_replaced():
            self.step_down(now)

    def on_reply(self, peer: int, request: Any, reply: Reply, now: float) -> None:
        core = self._core
        if isinstance(reply, Rejected):
            self.see(reply.promised)
            core.epochs.establish(reply.promised.epoch, core.out)
        elif isinstance(reply, StaleEpoch):
            core.epochs.raise_threshold(reply.epoch, core.out)
        elif isinstance(reply, AlreadyDecided) and isinstance(request, LeaderAccept):
            core.learn(request.seq, reply.value, now)
        elif isinstance(reply, RangePromise):
            for seq, value in reply.decided:
                core.learn(seq, value, now)
        if request.ballot != self.ballot:
            return
        if isinstance(request, RangePrepare) and self.role is Role.CANDIDATE:
            self._on_promise(peer, reply, now)
        elif isinstance(request, LeaderAccept) and self.leading:
            if isinstance(reply, Accepted) and reply.ballot == self.ballot:
                entry = self.inflight.get(request.seq)
                if entry is not None:
                    entry.acks.add(peer)
                    if len(entry.acks) >= core.quorum:
                        core.learn(request.seq, entry.value, now)
            elif isinstance(reply, Rejected | StaleEpoch):
                self.step_down(now)
        elif isinstance(request, Heartbeat) and isinstance(reply, HeartbeatReply):
            self._on_heartbeat_reply(peer, request, reply, now)
            if self.leading and reply.ok:
                self.catch_up.on_done(peer, reply.done, now)

    def on_unreachable(self, peer: int, request: Any, now: float) -> None:
        if isinstance(request, RangePrepare) and self.role is Role.CANDIDATE:
            if request.ballot == self.ballot:
                self.answered.add(peer)
                if len(self.answered) >= self._core.peer_count:
                    self._candidate_failed(now)

    def step_down(self, now: float) -> None:
        """Stop leading (or campaigning): pending reads fail, queued values are dropped."""
        if self.role is Role.FOLLOWER:
            return
        out = self._core.out
        was_leading = self.leading
        out.ready.reads_failed.extend(rid for rid, _ in self.pending_reads)
        for round_ in self.rounds.values():
            out.ready.reads_failed.extend(rid for rid, _ in round_.reads)
        out.ready.dropped.extend(self.queue)
        self.pending_reads = []
        self.rounds = {}
        self.queue.clear()
        self.inflight = {}
        self.role = Role.FOLLOWER
        self.ballot = None
        self.wake_at = math.inf
        self.lease_until = -math.inf
        if was_leading:
            out.ready.leading = False
        self._reset_election(now)

    # ---- internals ----------------------------------------------------------------------

    def _reset_election(self, now: float) -> None:
        self.election_at = now + self._rng.uniform(
            _limits.election_timeout_min_s, _limits.election_timeout_max_s
        )

    def _candidate_failed(self, now: float) -> None:
        self.step_down(now)  # retried when the election timer fires again

    def _on_promise(self, peer: int, reply: Reply, now: float) -> None:
        self.answered.add(peer)
        if isinstance(reply, RangePromise) and reply.ballot == self.ballot:
            self.promises[peer] = reply.start
            for seq, ballot, value in reply.accepted:
                current = self.reports.get(seq)
                if current is None or ballot > current[0]:
                    self.reports[seq] = (ballot, value)
                self.reported_top = max(self.reported_top, seq)
            for seq, _ in reply.decided:
                self.reported_top = max(self.reported_top, seq)
            covered = self.covered_from_promises()
            if covered is not None:
                self._take_over(covered, now)
                return
        if len(self.answered) >= self._core.peer_count:
            self._candidate_failed(now)

    def _take_over(self, covered: int, now: float) -> None:
        """Rule 2."""
        core = self._core
        self.role = Role.LEADER
        self.heard = self.ballot
        self.covered_from = covered
        self.read_floor = max(self.reported_top, covered - 1)
        self.catch_up.reset()
        core.out.ready.leading = True
        for seq in range(max(self.from_seq, core.min_seq), covered):
            if seq >= self.from_seq + HOLES_CLASSIC_MAX:
                break
            if not core.is_decided(seq):
                core.proposer.start(seq, core.noop, now)
        high = max(self.reported_top, core.max_seq)
        self.next_seq = max(high, covered - 1) + 1
        for seq in range(max(covered, core.min_seq), self.next_seq):
            if not core.is_decided(seq):
                report = self.reports.get(seq)
                self._send_accept(seq, core.noop if report is None else report[1], now)
        self.send_round(now)
        self._fill_window(now)

    def _fill_window(self, now: float) -> None:
        core = self._core
        while self.leading and self.queue and len(self.inflight) < _limits.leader_window_max:
            seq = self.next_seq
            self.next_seq += 1
            if not core.is_decided(seq) and seq >= core.min_seq:
                self._send_accept(seq, self.queue.popleft(), now)

    def _send_accept(self, seq: int, value: Any, now: float) -> None:
        core = self._core
        assert self.ballot is not None
        self.inflight[seq] = InFlight(value, resend_at=now + _limits.accept_resend_s)
        chosen = self.chosen_upto()
        for peer in range(core.peer_count):
            core.out.send(
                peer, LeaderAccept(core.me, core.advertised_done, seq, self.ballot, value, chosen)
            )

    def _tick_leading(self, now: float) -> None:
        core = self._core
        assert self.ballot is not None
        for number, round_ in list(self.rounds.items()):
            if round_.sent_at + _limits.read_round_timeout_s <= now:
                del self.rounds[number]
                self.pending_reads[:0] = round_.reads  # they ride on the next round
        for seq, entry in list(self.inflight.items()):
            if entry.resend_at <= now:
                entry.resend_at = now + _limits.accept_resend_s
                chosen = self.chosen_upto()
                for peer in range(core.peer_count):
                    if peer not in entry.acks:
                        core.out.send(
                            peer,
                            LeaderAccept(
                                core.me, core.advertised_done, seq, self.ballot, entry.value, chosen
                            ),
                        )
        if self.leading and (
            self.wake_at <= now or (self.pending_reads and not self._reads_in_flight())
        ):
            self.send_round(now)
