"""The proposer: one classic Paxos instance per `start(seq, value)`, retried until decided.

Rules kept here:
- A round picks a ballot `(established epoch, round, me)` above every ballot seen in the
  instance, sends prepares, and on a majority of promises proposes the value of the highest
  accepted ballot among them (its own value if none); a majority of accepts decides it.
- A ballot seen in a promise or rejection with a higher epoch is established (its sender
  could use it only if a majority persisted it): the next round adopts it.
- A proposal waits while this peer is recovering or must fence first; it is resumed when
  that ends. A round that fails backs off at random (`backoff_base_s`..`backoff_max_s`) so
  duelling proposers settle.
- An acceptor answering "already decided" teaches the decision, which is passed on to the
  peers not known to hold it.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _limits
from ._ballot import Ballot
from ._messages import (
    Accept,
    Accepted,
    AlreadyDecided,
    Decide,
    Forgotten,
    Prepare,
    Promise,
    Rejected,
    Reply,
    StaleEpoch,
)

if TYPE_CHECKING:
    from ._core import PaxosCore


class Phase(enum.Enum):
    WAIT = "wait"  # backing off, or waiting for recovery or a fence
    PREPARE = "prepare"
    ACCEPT = "accept"


@dataclass(slots=True)
class Proposal:
    seq: int
    value: Any
    phase: Phase = Phase.WAIT
    ballot: Ballot | None = None
    top: Ballot | None = None  # highest ballot seen in this instance
    votes: set[int] = field(default_factory=set)
    answered: set[int] = field(default_factory=set)
    best: tuple[Ballot, Any] | None = None
    chosen: Any = None
    attempts: int = 0
    wake_at: float = 0.0
    informed: set[int] = field(default_factory=set)  # peers known to hold the decision


class Proposer:
    """Every instance this peer is proposing in, keyed by instance."""

    def __init__(self, core: PaxosCore, rng: random.Random) -> None:
        self._core = core
        self._rng = rng
        self.proposals: dict[int, Proposal] = {}

    def start(self, seq: int, value: Any, now: float) -> None:
        if seq not in self.proposals:
            proposal = Proposal(seq=seq, value=value)
            self.proposals[seq] = proposal
            self._begin_round(proposal, now)

    def wake_times(self) -> list[float]:
        return [p.wake_at for p in self.proposals.values()]

    def drop_below(self, low: int) -> None:
        for seq in [seq for seq in self.proposals if seq < low]:
            del self.proposals[seq]

    def tick(self, now: float) -> None:
        for proposal in list(self.proposals.values()):
            if proposal.wake_at <= now and proposal.seq in self.proposals:
                if proposal.phase is Phase.WAIT:
                    self._begin_round(proposal, now)
                else:
                    self._fail_round(proposal, now)

    def wake_parked(self, now: float) -> None:
        """Resume proposals parked for recovery or a fence."""
        for proposal in self.proposals.values():
            if proposal.phase is Phase.WAIT and proposal.wake_at == math.inf:
                proposal.wake_at = now

    def on_unreachable(self, peer: int, request: Prepare | Accept, now: float) -> None:
        proposal = self.proposals.get(request.seq)
        if proposal is not None and proposal.ballot == request.ballot:
            proposal.answered.add(peer)
            self._check_round_failed(proposal, now)

    def on_reply(self, peer: int, request: Prepare | Accept, reply: Reply, now: float) -> None:
        core = self._core
        epochs = core.epochs
        seq = request.seq
        if isinstance(reply, AlreadyDecided):
            proposal = self.proposals.get(seq)
            informed = set(proposal.informed) if proposal is not None else set()
            informed.add(peer)
            core.learn(seq, reply.value, now)
            self._broadcast_decide(seq, reply.value, informed)
            return
        if isinstance(reply, Forgotten):
            core.min_adopted = max(core.min_adopted, reply.min)
            return
        if isinstance(reply, StaleEpoch):
            epochs.raise_threshold(reply.epoch, core.out)
        if isinstance(reply, Rejected):
            epochs.establish(reply.promised.epoch, core.out)
        if isinstance(reply, Promise) and reply.accepted is not None:
            epochs.establish(reply.accepted.epoch, core.out)
        proposal = self.proposals.get(seq)
        if proposal is None or proposal.ballot != request.ballot:
            return
        if isinstance(reply, Rejected):
            if proposal.top is None or reply.promised > proposal.top:
                proposal.top = reply.promised
        if isinstance(request, Prepare) and proposal.phase is Phase.PREPARE:
            proposal.answered.add(peer)
            if isinstance(reply, Promise) and reply.ballot == proposal.ballot:
                proposal.votes.add(peer)
                if reply.accepted is not None and (
                    proposal.best is None or reply.accepted > proposal.best[0]
                ):
                    proposal.best = (reply.accepted, reply.value)
                if len(proposal.votes) >= core.quorum:
                    self._begin_accept(proposal, now)
                    return
        elif isinstance(request, Accept) and proposal.phase is Phase.ACCEPT:
            proposal.answered.add(peer)
            if isinstance(reply, Accepted) and reply.ballot == proposal.ballot:
                proposal.votes.add(peer)
                if len(proposal.votes) >= core.quorum:
                    value = proposal.chosen
                    core.learn(seq, value, now)
                    self._broadcast_decide(seq, value, {core.me})
                    return
        else:
            return
        self._check_round_failed(proposal, now)

    def _begin_round(self, proposal: Proposal, now: float) -> None:
        core = self._core
        epochs = core.epochs
        proposal.phase = Phase.WAIT
        if core.recovering or core.fencer.needed():
            proposal.wake_at = math.inf  # resumed when recovery or the fence completes
            if core.fencer.needed():
                core.fencer.request_intact(now)
            return
        epoch = epochs.established
        top = proposal.top
        own = core.leader.ballot
        if own is not None and (top is None or own > top):
            top = own  # never reuse our leader ballot in a classic round
        round_ = top.round + 1 if top is not None and top.epoch == epoch else 1
        if top is not None and top.epoch > epoch:
            # Seen in a promise: established. Adopt it rather than lose every round.
            epochs.establish(top.epoch, core.out)
            epoch = epochs.established
            round_ = top.round + 1
        ballot = Ballot(epoch, round_, core.me)
        assert top is None or ballot > top
        proposal.ballot = ballot
        proposal.top = ballot
        proposal.phase = Phase.PREPARE
        proposal.votes = set()
        proposal.answered = set()
        proposal.best = None
        proposal.attempts += 1
        proposal.wake_at = now + _limits.round_timeout_s
        for peer in range(core.peer_count):
            core.out.send(peer, Prepare(core.me, core.advertised_done, proposal.seq, ballot))

    def _begin_accept(self, proposal: Proposal, now: float) -> None:
        core = self._core
        assert proposal.ballot is not None
        proposal.chosen = proposal.best[1] if proposal.best is not None else proposal.value
        proposal.phase = Phase.ACCEPT
        proposal.votes = set()
        proposal.answered = set()
        proposal.best = None
        proposal.wake_at = now + _limits.round_timeout_s
        for peer in range(core.peer_count):
            core.out.send(
                peer,
                Accept(
                    core.me, core.advertised_done, proposal.seq, proposal.ballot, proposal.chosen
                ),
            )

    def _check_round_failed(self, proposal: Proposal, now: float) -> None:
        if proposal.phase is not Phase.WAIT and len(proposal.answered) >= self._core.peer_count:
            self._fail_round(proposal, now)

    def _fail_round(self, proposal: Proposal, now: float) -> None:
        proposal.phase = Phase.WAIT
        proposal.chosen = None
        proposal.best = None
        cap = min(_limits.backoff_max_s, _limits.backoff_base_s * 2 ** min(proposal.attempts, 16))
        proposal.wake_at = now + self._rng.uniform(cap / 2, cap)

    def _broadcast_decide(self, seq: int, value: Any, informed: set[int]) -> None:
        core = self._core
        for peer in range(core.peer_count):
            if peer != core.me and peer not in informed:
                core.out.send(peer, Decide(core.me, core.advertised_done, seq, value))
