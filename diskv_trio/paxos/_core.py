"""Sans-I/O Paxos peer: acceptor, proposer and learner rules, done values, fences.

Inputs are method calls (`start`, `done`, `on_request`, `on_reply`, `on_unreachable`,
`tick`), each handed the current time; each returns a `Ready`: journal records to append
(and whether they must be synced), messages to send and, for a request, the reply. The
driver appends the records, syncs them when `must_sync` is set, and only then sends the
messages and the reply, then calls `advance(ready, now)`. The core never reads a clock,
a socket or a file.

Rules it keeps (DESIGN.md section 4):

1. Acceptor: promise a ballot not below the promised one; accept a ballot not below the
   promised one; both journalled and synced before the reply. A decided instance answers
   every prepare and accept with its value. Learning a decision is always safe.
2. Ballots are `(epoch, round, peer)`. An acceptor rejects ballots whose epoch is below its
   threshold. A proposer uses only its *established* epoch: one it completed a fence at, or
   saw in a prepare, an accept or a promise (the sender could use it only if a majority
   persisted it). A higher epoch learned otherwise only raises the threshold; before
   proposing above it, the peer fences a fresh epoch itself.
3. A peer that lost its disk is *recovering*: it answers no prepare or accept and runs the
   fence until `floor(n/2)+1` other intact peers acked the current nonce; then
   `floor = max(seen)` is journalled and it votes only in instances above the floor.
4. `min()` is 1 + the minimum of every peer's done value; instances below it are dropped.
   A peer advertises its done value only after a sync that followed the `done()` call, so
   it never tells others to forget an instance whose decision is not durable here.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import _limits
from ._ballot import Ballot, ballot_from_wire, ballot_to_wire
from ._errors import PaxosProtocolError
from ._messages import (
    Accept,
    Accepted,
    Ack,
    AlreadyDecided,
    Decide,
    DoneNotice,
    EpochNotice,
    Fence,
    FenceAck,
    FenceBusy,
    FenceReject,
    Forgotten,
    NotVoting,
    Prepare,
    Promise,
    Rejected,
    Reply,
    Request,
    StaleEpoch,
)

SNAPSHOT_FORMAT = 1
RECORD_KEY = "px"  # every Paxos journal record is a map with this key naming its kind


class Fate(enum.IntEnum):
    """The course's fates (Go iota+1)."""

    DECIDED = 1
    PENDING = 2
    FORGOTTEN = 3


@dataclass(slots=True)
class InstanceState:
    """Acceptor and learner state of one instance. `value` is the decided value once decided."""

    promised: Ballot | None = None
    accepted: Ballot | None = None
    value: Any = None
    decided: bool = False


@dataclass(slots=True)
class PaxosRestoredState:
    """Everything `PaxosCore` needs to resume after a restart with the disk intact."""

    instances: dict[int, InstanceState] = field(default_factory=dict)
    dones: dict[int, int] = field(default_factory=dict)  # other peers' done values
    own_done: int = -1  # from the snapshot only: the application calls done() again
    min: int = 0
    max: int = -1
    threshold: int = 0
    threshold_nonce: int = 0
    established: int = 0
    floor: int = -1
    recovering: bool = False


@dataclass(frozen=True, slots=True)
class Envelope:
    """A request for peer `dst` (possibly this peer: its own acceptor is called directly)."""

    dst: int
    msg: Request


@dataclass(slots=True)
class Ready:
    """What one input produced. See the module docstring for the driver's duties."""

    records: list[dict[str, Any]] = field(default_factory=list)
    must_sync: bool = False
    messages: list[Envelope] = field(default_factory=list)
    reply: Reply | None = None
    decided: list[tuple[int, Any]] = field(default_factory=list)  # newly (seq, value)
    forgotten: bool = False  # min() advanced
    advertise_done: int | None = None  # applied by advance(), after the sync
    voting: bool | None = None  # set when the voting state changed


class _Phase(enum.Enum):
    WAIT = "wait"  # backing off, or waiting for recovery or a fence
    PREPARE = "prepare"
    ACCEPT = "accept"


@dataclass(slots=True)
class _Proposal:
    seq: int
    value: Any
    phase: _Phase = _Phase.WAIT
    ballot: Ballot | None = None
    top: Ballot | None = None  # highest ballot seen in this instance
    votes: set[int] = field(default_factory=set)
    answered: set[int] = field(default_factory=set)
    best: tuple[Ballot, Any] | None = None
    chosen: Any = None
    attempts: int = 0
    wake_at: float = 0.0
    informed: set[int] = field(default_factory=set)  # peers known to hold the decision


@dataclass(slots=True)
class _FenceAttempt:
    epoch: int
    nonce: int
    intact: bool
    acks: dict[int, int] = field(default_factory=dict)  # peer -> highest instance seen
    answered: set[int] = field(default_factory=set)
    wake_at: float = 0.0
    resend_at: dict[int, float] = field(default_factory=dict)  # lost calls, sent again


class PaxosCore:
    """One Paxos peer's decisions. Not thread-safe; one driver feeds it."""

    def __init__(
        self,
        *,
        peer_count: int,
        me: int,
        rng: random.Random,
        boot_id: int,
        restored: PaxosRestoredState | None = None,
        recovering: bool = False,
        naive_rejoin: bool = False,
    ) -> None:
        """Create a peer.

        Args:
            peer_count: number of peers in the group.
            me: this peer's index.
            rng: randomness for back-off (seeded in simulations).
            boot_id: unique per process start; fence nonces are built from it.
            restored: state rebuilt by `restore_state()`; None for an empty peer.
            recovering: the peer lost its disk (see module docstring, rule 3).
            naive_rejoin: FOR TESTS ONLY: instead of the fence, a recovering peer votes again
                as soon as it learns one decision. Unsafe; kept to show the fence is needed.
        """
        if peer_count < 1 or not 0 <= me < peer_count:
            raise ValueError(f"bad peer_count={peer_count} me={me}")
        self.peer_count = peer_count
        self.me = me
        self._rng = rng
        self._boot_id = boot_id & 0xFFFF_FFFF
        self._fence_counter = 0
        self._naive_rejoin = naive_rejoin
        self._quorum = peer_count // 2 + 1
        r = restored or PaxosRestoredState()
        self._instances: dict[int, InstanceState] = dict(r.instances)
        self._dones = [-1] * peer_count
        for peer, value in r.dones.items():
            if 0 <= peer < peer_count and peer != me:
                self._dones[peer] = value
        self._own_done = r.own_done
        self._advertised_done = r.own_done
        self._min = r.min
        self._min_adopted = r.min
        self._max = r.max
        self._threshold = r.threshold
        self._threshold_nonce = r.threshold_nonce
        self._established = r.established
        self._heard_epoch = max(r.threshold, r.established)
        self._floor = r.floor
        self._recovering = r.recovering or recovering
        self._recovery_journalled = r.recovering
        self._proposals: dict[int, _Proposal] = {}
        self._fence: _FenceAttempt | None = None
        # An intact fence of our own waits until then: the peer whose fence raised our
        # threshold announces the epoch when it completes, which makes ours unneeded.
        self._fence_not_before = -math.inf
        self._fence_deferred = False
        self._done_acked = [-1] * peer_count
        self._done_notice_at = [math.inf] * peer_count
        self._done_notice_backoff = [_limits.done_notice_delay_s] * peer_count
        self._done_notice_inflight = [False] * peer_count
        self._ready = Ready()
        self._drop_below_min()

    # ---- queries --------------------------------------------------------------------------

    @property
    def voting(self) -> bool:
        return not self._recovering

    @property
    def epoch(self) -> int:
        return self._established

    @property
    def floor(self) -> int:
        return self._floor

    def min(self) -> int:
        return self._min

    def max(self) -> int:
        return self._max

    def status(self, seq: int) -> tuple[Fate, Any]:
        if seq < self._min:
            return Fate.FORGOTTEN, None
        inst = self._instances.get(seq)
        if inst is not None and inst.decided:
            return Fate.DECIDED, inst.value
        return Fate.PENDING, None

    def instance_ahead_limit(self) -> int:
        """The highest instance a peer's request may name (see `INSTANCE_AHEAD_MAX`)."""
        return max(self._max, self._min, self._floor) + _limits.INSTANCE_AHEAD_MAX

    def proposing(self, seq: int) -> bool:
        return seq in self._proposals

    def statistics(self) -> dict[str, Any]:
        return {
            "max": self._max,
            "min": self._min,
            "epoch": self._established,
            "epoch_threshold": self._threshold,
            "floor": self._floor,
            "recovering": self._recovering,
            "instances": len(self._instances),
            "proposals": len(self._proposals),
            "done": self._own_done,
            "done_advertised": self._advertised_done,
        }

    def next_wakeup(self) -> float | None:
        """The earliest time at which `tick()` has something to do, or None when idle."""
        times = [p.wake_at for p in self._proposals.values()]
        if self._fence is not None:
            times.append(self._fence.wake_at)
            times.extend(self._fence.resend_at.values())
        elif self._fence_deferred:
            times.append(self._fence_not_before)
        times.extend(self._done_notice_at)
        best = min(times, default=math.inf)
        return None if best == math.inf else best

    def snapshot_state(self) -> dict[str, Any]:
        """Everything needed to resume: live instances, done values, epochs, floor, min, max."""
        return {
            "format": SNAPSHOT_FORMAT,
            "instances": [
                [seq, ballot_to_wire(i.promised), ballot_to_wire(i.accepted), i.value, i.decided]
                for seq, i in sorted(self._instances.items())
            ],
            "dones": {str(p): d for p, d in enumerate(self._dones) if p != self.me},
            "own_done": self._own_done,
            "min": self._min,
            "max": self._max,
            "threshold": self._threshold,
            "threshold_nonce": self._threshold_nonce,
            "established": self._established,
            "floor": self._floor,
            "recovering": self._recovering,
        }

    # ---- inputs ---------------------------------------------------------------------------

    def boot(self, now: float) -> Ready:
        """Call once when the driver starts: journals the start of recovery and starts the fence."""
        self._begin()
        if self._recovering and not self._recovery_journalled:
            self._recovery_journalled = True
            self._record({RECORD_KEY: "r"}, sync=True)
        if self._recovering and not self._naive_rejoin:
            self._start_fence(now, intact=False)
        return self._end()

    def start(self, seq: int, value: Any, now: float) -> Ready:
        """Begin agreement on `value` for `seq` (ignored below min, when decided or proposing)."""
        self._begin()
        if seq >= self._min:
            self._see(seq)
            inst = self._instances.get(seq)
            if (inst is None or not inst.decided) and seq not in self._proposals:
                proposal = _Proposal(seq=seq, value=value)
                self._proposals[seq] = proposal
                self._begin_round(proposal, now)
        return self._end()

    def done(self, seq: int) -> Ready:
        """The application no longer needs instances <= seq."""
        self._begin()
        if seq > self._own_done:
            self._own_done = seq
            self._ready.advertise_done = seq
            self._ready.must_sync = True  # decisions up to seq durable before we advertise it
            self._maybe_forget()
        return self._end()

    def truncate(self, upto: int) -> Ready:
        """The application installed a state covering every instance <= upto.

        This peer holds no Paxos state for those instances (a state transfer skipped them),
        so it forgets them at once and answers Forgotten for them: a lagging peer that asks
        learns to fetch a state transfer instead of waiting for a vote that cannot come.
        Every instance <= upto was decided (someone applied it), so this loses nothing.
        """
        self._begin()
        if upto + 1 > self._min_adopted:
            self._min_adopted = upto + 1
            self._see(upto)
            self._maybe_forget()
        return self._end()

    def advance(self, ready: Ready, now: float) -> None:
        """The driver made `ready`'s records durable (if asked) and sent its messages."""
        if ready.advertise_done is not None and ready.advertise_done > self._advertised_done:
            self._advertised_done = ready.advertise_done
            for peer in range(self.peer_count):
                if peer != self.me and self._done_acked[peer] < self._advertised_done:
                    self._done_notice_backoff[peer] = _limits.done_notice_delay_s
                    if not self._done_notice_inflight[peer]:
                        self._done_notice_at[peer] = min(
                            self._done_notice_at[peer], now + _limits.done_notice_delay_s
                        )

    def on_request(self, msg: Request, now: float) -> Ready:
        """A request from a peer (or this peer's own proposer). The reply is in `Ready.reply`.

        Raises:
            PaxosProtocolError: unknown sender, or an instance beyond `instance_ahead_limit()`;
                nothing was changed or journalled.
        """
        self._begin()
        if not 0 <= msg.src < self.peer_count:
            raise PaxosProtocolError(f"unknown peer {msg.src}")
        seq = getattr(msg, "seq", None)
        limit = self.instance_ahead_limit()
        if seq is not None and seq > limit:
            raise PaxosProtocolError(f"instance {seq} is beyond {limit}, too far ahead of this peer")
        self._note_done(msg.src, msg.done)
        if isinstance(msg, Prepare):
            self._ready.reply = self._on_prepare(msg)
        elif isinstance(msg, Accept):
            self._ready.reply = self._on_accept(msg)
        elif isinstance(msg, Decide):
            self._learn(msg.seq, msg.value, now)
            self._ready.reply = self._ack()
        elif isinstance(msg, Fence):
            self._ready.reply = self._on_fence(msg, now)
        elif isinstance(msg, EpochNotice):
            self._heard_epoch = max(self._heard_epoch, msg.epoch)
            if not self._recovering:
                self._establish(msg.epoch)
                self._resume_if_unblocked(now)
            self._ready.reply = self._ack()
        else:
            self._ready.reply = self._ack()
        self._maybe_forget()
        return self._end()

    def on_reply(self, envelope: Envelope, reply: Reply, now: float) -> Ready:
        """The reply to a request this peer sent."""
        self._begin()
        request = envelope.msg
        if reply.src != envelope.dst:
            raise PaxosProtocolError(f"reply from {reply.src} to a request for {envelope.dst}")
        self._note_done(reply.src, reply.done)
        if reply.src != self.me:
            self._done_acked[reply.src] = max(self._done_acked[reply.src], request.done)
        if isinstance(request, DoneNotice):
            self._done_notice_inflight[envelope.dst] = False
            self._schedule_done_notice(envelope.dst, now, backoff=False)
        elif isinstance(request, Prepare | Accept):
            self._on_proposer_reply(envelope.dst, request, reply, now)
        elif isinstance(request, Fence):
            self._on_fence_reply(envelope.dst, request, reply, now)
        self._maybe_forget()
        return self._end()

    def on_unreachable(self, envelope: Envelope, now: float) -> Ready:
        """The request could not be delivered or its reply was lost."""
        self._begin()
        request = envelope.msg
        peer = envelope.dst
        if isinstance(request, DoneNotice):
            self._done_notice_inflight[peer] = False
            self._schedule_done_notice(peer, now, backoff=True)
        elif isinstance(request, Prepare | Accept):
            proposal = self._proposals.get(request.seq)
            if proposal is not None and proposal.ballot == request.ballot:
                proposal.answered.add(peer)
                self._check_round_failed(proposal, now)
        elif isinstance(request, Fence):
            fence = self._fence
            if fence is not None and fence.nonce == request.nonce and peer not in fence.acks:
                # Same attempt, same nonce: an acker that persisted it acks again, and acks
                # gathered at different times within one attempt are as good (each acker
                # rejects older epochs from its ack on).
                fence.resend_at[peer] = now + _limits.fence_resend_s
        return self._end()

    def tick(self, now: float) -> Ready:
        """Fire the timers that are due: proposer retries, fence retries, done notices."""
        self._begin()
        for proposal in list(self._proposals.values()):
            if proposal.wake_at <= now and proposal.seq in self._proposals:
                if proposal.phase is _Phase.WAIT:
                    self._begin_round(proposal, now)
                else:
                    self._fail_round(proposal, now)
        fence = self._fence
        if fence is not None and fence.wake_at <= now:
            self._fence = None
            if not fence.intact or self._needs_fence():
                self._start_fence(now, intact=fence.intact)
            else:
                self._resume_proposals(now)
        elif fence is not None:
            for peer, when in list(fence.resend_at.items()):
                if when <= now:
                    del fence.resend_at[peer]
                    self._send(
                        peer, Fence(self.me, self._advertised_done, fence.epoch, fence.nonce)
                    )
        elif fence is None and self._fence_deferred and self._fence_not_before <= now:
            self._fence_deferred = False
            if self._needs_fence():
                self._start_fence(now, intact=True)
            else:
                self._resume_proposals(now)
        for peer in range(self.peer_count):
            if (
                self._done_notice_at[peer] <= now
                and not self._done_notice_inflight[peer]
                and peer != self.me
            ):
                self._done_notice_at[peer] = math.inf
                if self._done_acked[peer] < self._advertised_done:
                    self._done_notice_inflight[peer] = True
                    self._send(peer, DoneNotice(src=self.me, done=self._advertised_done))
        return self._end()

    # ---- acceptor -------------------------------------------------------------------------

    def _on_prepare(self, msg: Prepare) -> Reply:
        early = self._vote_precheck(msg.seq, msg.ballot)
        if early is not None:
            return early
        inst = self._instances.setdefault(msg.seq, InstanceState())
        if inst.promised is not None and msg.ballot < inst.promised:
            return Rejected(self.me, self._advertised_done, msg.seq, msg.ballot, inst.promised)
        self._establish(msg.ballot.epoch)
        if inst.promised != msg.ballot:
            assert inst.promised is None or msg.ballot > inst.promised
            inst.promised = msg.ballot
            self._record({RECORD_KEY: "p", "s": msg.seq, "b": msg.ballot.to_wire()}, sync=True)
        else:
            self._ready.must_sync = True  # a repeated promise still waits for the first's sync
        return Promise(
            self.me,
            self._advertised_done,
            msg.seq,
            msg.ballot,
            inst.accepted,
            inst.value if inst.accepted is not None else None,
        )

    def _on_accept(self, msg: Accept) -> Reply:
        early = self._vote_precheck(msg.seq, msg.ballot)
        if early is not None:
            return early
        inst = self._instances.setdefault(msg.seq, InstanceState())
        if inst.promised is not None and msg.ballot < inst.promised:
            return Rejected(self.me, self._advertised_done, msg.seq, msg.ballot, inst.promised)
        self._establish(msg.ballot.epoch)
        if inst.accepted != msg.ballot:
            inst.promised = msg.ballot
            inst.accepted = msg.ballot
            inst.value = msg.value
            self._record(
                {RECORD_KEY: "a", "s": msg.seq, "b": msg.ballot.to_wire(), "v": msg.value},
                sync=True,
            )
        else:
            self._ready.must_sync = True
        assert inst.accepted is not None and inst.promised is not None
        assert inst.accepted <= inst.promised
        return Accepted(self.me, self._advertised_done, msg.seq, msg.ballot)

    def _vote_precheck(self, seq: int, ballot: Ballot) -> Reply | None:
        """The answers that do not depend on the ballot's order: forgotten, decided, no vote."""
        if seq < self._min:
            return Forgotten(self.me, self._advertised_done, seq, self._min)
        self._see(seq)
        inst = self._instances.get(seq)
        if inst is not None and inst.decided:
            return AlreadyDecided(self.me, self._advertised_done, seq, inst.value)
        self._heard_epoch = max(self._heard_epoch, ballot.epoch)
        if self._recovering or seq <= self._floor:
            return NotVoting(self.me, self._advertised_done, seq, ballot)
        if ballot.epoch < self._threshold:
            return StaleEpoch(self.me, self._advertised_done, seq, ballot, self._threshold)
        return None

    def _defer_own_fence(self, now: float) -> None:
        self._fence_not_before = max(
            self._fence_not_before,
            now + self._rng.uniform(_limits.fence_timeout_s / 2, _limits.fence_timeout_s),
        )

    def _on_fence(self, msg: Fence, now: float) -> Reply:
        self._heard_epoch = max(self._heard_epoch, msg.epoch)
        if self._recovering:
            return FenceBusy(self.me, self._advertised_done, msg.nonce)
        if msg.epoch > self._threshold or (
            msg.epoch == self._threshold and msg.nonce == self._threshold_nonce
        ):
            if msg.epoch > self._threshold:
                self._threshold = msg.epoch
                self._threshold_nonce = msg.nonce
                self._record_epoch()
                self._defer_own_fence(now)
            self._ready.must_sync = True
            seen = max(self._max, self._floor)
            return FenceAck(self.me, self._advertised_done, msg.epoch, msg.nonce, seen)
        return FenceReject(self.me, self._advertised_done, self._threshold, msg.nonce)

    def _ack(self) -> Reply:
        return Ack(self.me, self._advertised_done)

    # ---- learner --------------------------------------------------------------------------

    def _learn(self, seq: int, value: Any, now: float) -> None:
        if seq < self._min:
            return
        self._see(seq)
        inst = self._instances.setdefault(seq, InstanceState())
        if inst.decided:
            assert inst.value == value, f"instance {seq}: decided {inst.value!r} then {value!r}"
            return
        record: dict[str, Any] = {RECORD_KEY: "d", "s": seq}
        if inst.accepted is None or not (inst.value is value or inst.value == value):
            record["v"] = value  # else the accept record before it holds the value: journal it once
        inst.decided = True
        inst.value = value
        self._record(record, sync=False)
        self._ready.decided.append((seq, value))
        self._proposals.pop(seq, None)
        if self._recovering and self._naive_rejoin:
            self._recovering = False
            self._ready.voting = True
            self._resume_proposals(now)

    # ---- proposer -------------------------------------------------------------------------

    def _needs_fence(self) -> bool:
        return not self._recovering and self._threshold > self._established

    def _begin_round(self, proposal: _Proposal, now: float) -> None:
        proposal.phase = _Phase.WAIT
        if self._recovering or self._needs_fence():
            proposal.wake_at = math.inf  # resumed when recovery or the fence completes
            if self._needs_fence() and self._fence is None:
                if now >= self._fence_not_before:
                    self._start_fence(now, intact=True)
                else:
                    self._fence_deferred = True
            return
        epoch = self._established
        top = proposal.top
        round_ = top.round + 1 if top is not None and top.epoch == epoch else 1
        if top is not None and top.epoch > epoch:
            # Seen in a promise: established. Adopt it rather than lose every round.
            self._establish(top.epoch)
            epoch = self._established
            round_ = top.round + 1
        ballot = Ballot(epoch, round_, self.me)
        assert top is None or ballot > top
        proposal.ballot = ballot
        proposal.top = ballot
        proposal.phase = _Phase.PREPARE
        proposal.votes = set()
        proposal.answered = set()
        proposal.best = None
        proposal.attempts += 1
        proposal.wake_at = now + _limits.round_timeout_s
        for peer in range(self.peer_count):
            self._send(peer, Prepare(self.me, self._advertised_done, proposal.seq, ballot))

    def _on_proposer_reply(
        self, peer: int, request: Prepare | Accept, reply: Reply, now: float
    ) -> None:
        seq = request.seq
        if isinstance(reply, AlreadyDecided):
            proposal = self._proposals.get(seq)
            informed = set(proposal.informed) if proposal is not None else set()
            informed.add(peer)
            self._learn(seq, reply.value, now)
            self._broadcast_decide(seq, reply.value, informed)
            return
        if isinstance(reply, Forgotten):
            self._min_adopted = max(self._min_adopted, reply.min)
            return
        if isinstance(reply, StaleEpoch):
            if reply.epoch > self._threshold:
                self._threshold = reply.epoch
                self._threshold_nonce = 0
                self._record_epoch()
        if isinstance(reply, Rejected):
            self._establish(reply.promised.epoch)
        if isinstance(reply, Promise) and reply.accepted is not None:
            self._establish(reply.accepted.epoch)
        proposal = self._proposals.get(seq)
        if proposal is None or proposal.ballot != request.ballot:
            return
        if isinstance(reply, Rejected):
            if proposal.top is None or reply.promised > proposal.top:
                proposal.top = reply.promised
        if isinstance(request, Prepare) and proposal.phase is _Phase.PREPARE:
            proposal.answered.add(peer)
            if isinstance(reply, Promise) and reply.ballot == proposal.ballot:
                proposal.votes.add(peer)
                if reply.accepted is not None and (
                    proposal.best is None or reply.accepted > proposal.best[0]
                ):
                    proposal.best = (reply.accepted, reply.value)
                if len(proposal.votes) >= self._quorum:
                    self._begin_accept(proposal, now)
                    return
        elif isinstance(request, Accept) and proposal.phase is _Phase.ACCEPT:
            proposal.answered.add(peer)
            if isinstance(reply, Accepted) and reply.ballot == proposal.ballot:
                proposal.votes.add(peer)
                if len(proposal.votes) >= self._quorum:
                    value = proposal.chosen
                    self._learn(seq, value, now)
                    self._broadcast_decide(seq, value, {self.me})
                    return
        else:
            return
        self._check_round_failed(proposal, now)

    def _begin_accept(self, proposal: _Proposal, now: float) -> None:
        assert proposal.ballot is not None
        proposal.chosen = proposal.best[1] if proposal.best is not None else proposal.value
        proposal.phase = _Phase.ACCEPT
        proposal.votes = set()
        proposal.answered = set()
        proposal.best = None
        proposal.wake_at = now + _limits.round_timeout_s
        for peer in range(self.peer_count):
            self._send(
                peer,
                Accept(
                    self.me, self._advertised_done, proposal.seq, proposal.ballot, proposal.chosen
                ),
            )

    def _check_round_failed(self, proposal: _Proposal, now: float) -> None:
        if proposal.phase is not _Phase.WAIT and len(proposal.answered) >= self.peer_count:
            self._fail_round(proposal, now)

    def _fail_round(self, proposal: _Proposal, now: float) -> None:
        proposal.phase = _Phase.WAIT
        proposal.chosen = None
        proposal.best = None
        cap = min(_limits.backoff_max_s, _limits.backoff_base_s * 2 ** min(proposal.attempts, 16))
        proposal.wake_at = now + self._rng.uniform(cap / 2, cap)

    def _broadcast_decide(self, seq: int, value: Any, informed: set[int]) -> None:
        for peer in range(self.peer_count):
            if peer != self.me and peer not in informed:
                self._send(peer, Decide(self.me, self._advertised_done, seq, value))

    def _resume_if_unblocked(self, now: float) -> None:
        """Proposals parked for an intact fence may go on once the epoch is established."""
        fence = self._fence
        if not self._needs_fence() and fence is not None and fence.intact:
            self._fence = None
        if not self._needs_fence() and self._fence is None:
            self._resume_proposals(now)

    def _resume_proposals(self, now: float) -> None:
        self._fence_deferred = False
        for proposal in self._proposals.values():
            if proposal.phase is _Phase.WAIT and proposal.wake_at == math.inf:
                proposal.wake_at = now

    # ---- fences ---------------------------------------------------------------------------

    def _start_fence(self, now: float, *, intact: bool) -> None:
        epoch = max(self._threshold, self._established, self._heard_epoch) + 1
        self._fence_counter += 1
        nonce = (self._boot_id << 32) | (self._fence_counter & 0xFFFF_FFFF)
        fence = _FenceAttempt(epoch=epoch, nonce=nonce, intact=intact)
        fence.wake_at = now + _limits.fence_timeout_s
        self._fence = fence
        if intact:
            # Our own persisted threshold counts as one of the majority.
            self._threshold = epoch
            self._threshold_nonce = nonce
            self._record_epoch()
            fence.acks[self.me] = max(self._max, self._floor)
            fence.answered.add(self.me)
        for peer in range(self.peer_count):
            if peer != self.me:
                self._send(peer, Fence(self.me, self._advertised_done, epoch, nonce))
        self._check_fence_done(now)

    def _on_fence_reply(self, peer: int, request: Fence, reply: Reply, now: float) -> None:
        fence = self._fence
        if isinstance(reply, FenceReject):
            self._heard_epoch = max(self._heard_epoch, reply.epoch)
            if reply.epoch > self._threshold and not self._recovering:
                self._threshold = reply.epoch
                self._threshold_nonce = 0
                self._record_epoch()
        if fence is None or request.nonce != fence.nonce:
            return  # an earlier attempt's (or boot's) answer: stale
        fence.answered.add(peer)
        fence.resend_at.pop(peer, None)
        if (
            isinstance(reply, FenceAck)
            and reply.nonce == fence.nonce
            and reply.epoch == fence.epoch
        ):
            fence.acks[peer] = reply.seen
            self._check_fence_done(now)
        else:
            self._check_fence_failed(now)

    def _check_fence_done(self, now: float) -> None:
        fence = self._fence
        assert fence is not None
        if len(fence.acks) < self._quorum:
            return
        self._fence = None
        if fence.intact and self._threshold != fence.epoch:
            # We acked a higher fence (or learned a higher epoch) meanwhile: this epoch
            # may not ride in ballots; fence again if still needed.
            if self._needs_fence():
                self._start_fence(now, intact=True)
            else:
                self._resume_proposals(now)
            return
        if not fence.intact:
            self._floor = max(self._floor, max(fence.acks.values()))
            self._max = max(self._max, self._floor)
            self._recovering = False
            self._record({RECORD_KEY: "f", "f": self._floor}, sync=True)
            self._ready.voting = True
        self._threshold = max(self._threshold, fence.epoch)
        if self._threshold == fence.epoch:
            self._threshold_nonce = fence.nonce
        self._established = max(self._established, fence.epoch)
        self._record_epoch()
        self._resume_proposals(now)
        for peer in range(self.peer_count):
            if peer != self.me:
                self._send(peer, EpochNotice(self.me, self._advertised_done, fence.epoch))

    def _check_fence_failed(self, now: float) -> None:
        """Retry soon once this attempt can no longer gather enough acks."""
        fence = self._fence
        assert fence is not None
        refused = len(fence.answered) - len(fence.acks)
        if self.peer_count - refused < self._quorum + (0 if fence.intact else 1):
            fence.resend_at.clear()
            fence.wake_at = min(
                fence.wake_at,
                now + self._rng.uniform(_limits.fence_retry_min_s, _limits.fence_retry_max_s),
            )

    # ---- done values and forgetting -------------------------------------------------------

    def _note_done(self, peer: int, done: int) -> None:
        if peer != self.me and done > self._dones[peer]:
            self._dones[peer] = done

    def _schedule_done_notice(self, peer: int, now: float, *, backoff: bool) -> None:
        if self._done_acked[peer] >= self._advertised_done:
            self._done_notice_backoff[peer] = _limits.done_notice_delay_s
            return
        if backoff:
            self._done_notice_backoff[peer] = min(
                _limits.done_notice_retry_max_s, self._done_notice_backoff[peer] * 2
            )
        self._done_notice_at[peer] = now + self._done_notice_backoff[peer]

    def _maybe_forget(self) -> None:
        dones = list(self._dones)
        dones[self.me] = self._own_done
        new_min = max(1 + min(dones), self._min_adopted)
        if new_min <= self._min:
            return
        self._min = new_min
        self._drop_below_min()
        self._record(
            {
                RECORD_KEY: "m",
                "m": new_min,
                "dn": {str(p): d for p, d in enumerate(self._dones) if p != self.me},
            },
            sync=False,
        )
        self._ready.forgotten = True

    def _drop_below_min(self) -> None:
        old = [seq for seq in self._instances if seq < self._min]
        for seq in old:
            del self._instances[seq]
        for seq in [seq for seq in self._proposals if seq < self._min]:
            del self._proposals[seq]

    # ---- helpers --------------------------------------------------------------------------

    def _see(self, seq: int) -> None:
        if seq > self._max:
            self._max = seq

    def _establish(self, epoch: int) -> None:
        """`epoch` is known to be persisted on a majority: ballots may carry it."""
        if epoch > self._established:
            self._established = epoch
            if epoch > self._threshold:
                self._threshold = epoch
                self._threshold_nonce = 0
            self._heard_epoch = max(self._heard_epoch, epoch)
            self._record_epoch()

    def _record_epoch(self) -> None:
        self._record(
            {
                RECORD_KEY: "e",
                "th": self._threshold,
                "n": self._threshold_nonce,
                "es": self._established,
            },
            sync=True,
        )

    def _record(self, record: dict[str, Any], *, sync: bool) -> None:
        self._ready.records.append(record)
        if sync:
            self._ready.must_sync = True

    def _send(self, peer: int, msg: Request) -> None:
        self._ready.messages.append(Envelope(peer, msg))

    def _begin(self) -> None:
        self._ready = Ready()

    def _end(self) -> Ready:
        ready, self._ready = self._ready, Ready()
        return ready


# ---- restore ----------------------------------------------------------------------------


def _int_field(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PaxosProtocolError(f"record {record.get(RECORD_KEY)!r}: field {key!r} is {value!r}")
    return value


def _dones_field(raw: Any) -> dict[int, int]:
    if not isinstance(raw, dict):
        raise PaxosProtocolError(f"bad done map {raw!r}")
    return {int(k): int(v) for k, v in raw.items()}


def is_paxos_record(record: Any) -> bool:
    """True for the records this package appends (the application may interleave its own)."""
    return isinstance(record, dict) and RECORD_KEY in record


def restore_state(
    snapshot_state: dict[str, Any] | None, records: Iterable[dict[str, Any]]
) -> PaxosRestoredState:
    """Rebuild a peer's state from `snapshot_state()` and the Paxos records journalled after it.

    Records not made by this package are skipped. The own done value comes from the snapshot
    only: instances the application had not captured yet stay available.

    Raises:
        PaxosProtocolError: a malformed snapshot or record.
    """
    state = PaxosRestoredState()
    if snapshot_state is not None:
        if snapshot_state.get("format") != SNAPSHOT_FORMAT:
            raise PaxosProtocolError(f"unknown snapshot format {snapshot_state.get('format')!r}")
        for row in snapshot_state["instances"]:
            seq, promised, accepted, value, decided = row
            state.instances[int(seq)] = InstanceState(
                promised=ballot_from_wire(promised),
                accepted=ballot_from_wire(accepted),
                value=value,
                decided=bool(decided),
            )
        state.dones = _dones_field(snapshot_state["dones"])
        for key in (
            "own_done",
            "min",
            "max",
            "threshold",
            "threshold_nonce",
            "established",
            "floor",
        ):
            setattr(state, key, _int_field(snapshot_state, key))
        state.recovering = bool(snapshot_state["recovering"])
    for record in records:
        if not is_paxos_record(record):
            continue
        kind = record[RECORD_KEY]
        if kind in ("p", "a", "d"):
            seq = _int_field(record, "s")
            state.max = max(state.max, seq)
            if seq < state.min:
                continue
            inst = state.instances.setdefault(seq, InstanceState())
            if kind == "d":
                if "v" in record:
                    inst.value = record["v"]
                elif inst.accepted is None:
                    raise PaxosProtocolError(f"decided record for {seq} without value or accept")
                inst.decided = True
            elif inst.decided:
                continue
            else:
                ballot = Ballot.from_wire(record.get("b"))
                inst.promised = ballot
                if kind == "a":
                    inst.accepted = ballot
                    inst.value = record.get("v")
        elif kind == "e":
            state.threshold = _int_field(record, "th")
            state.threshold_nonce = _int_field(record, "n")
            state.established = _int_field(record, "es")
        elif kind == "f":
            state.floor = _int_field(record, "f")
            state.max = max(state.max, state.floor)
            state.recovering = False
        elif kind == "r":
            state.recovering = True
        elif kind == "m":
            # min() never passes the application's own done value from the snapshot: the
            # instances after it are re-applied from these records after a restart, so
            # they must survive the replay even if everyone had forgotten them before.
            recorded_min = min(_int_field(record, "m"), state.own_done + 1)
            state.min = max(state.min, recorded_min)
            for peer, done in _dones_field(record.get("dn")).items():
                state.dones[peer] = max(state.dones.get(peer, -1), done)
            for seq in [s for s in state.instances if s < state.min]:
                del state.instances[seq]
        else:
            raise PaxosProtocolError(f"unknown Paxos record kind {kind!r}")
    return state
