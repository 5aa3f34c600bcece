"""Epochs and the fence (DESIGN.md section 4, "Restart after disk loss"), both sides.

Rules kept here:
- An acceptor rejects ballots whose epoch is below its `threshold`. It raises the threshold
  for a fence above it (journalled and synced before the ack, which carries the nonce and
  the highest instance it has seen), or for a stale-epoch answer or fence refusal it hears.
- A ballot may carry only an *established* epoch: one this peer completed a fence at, or saw
  in a prepare, an accept or a promise. A higher epoch learned otherwise only raises the
  threshold; before proposing above it the peer fences a fresh epoch itself, as an intact
  peer (it keeps voting, no floor), after a short random delay: the peer whose fence raised
  the threshold announces the epoch when it completes, which makes ours unneeded.
- A recovering peer (disk lost) answers no fence and votes in nothing until `floor(n/2)+1`
  *other* intact peers acked the current attempt's nonce; then `floor = max(their seen)` is
  journalled and synced, and it votes only above the floor. Answers to an earlier attempt
  or boot are stale. An attempt that cannot succeed any more is retried soon with a new
  nonce; a lost call is sent again within the same attempt.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _limits
from ._messages import EpochNotice, Fence, FenceAck, FenceBusy, FenceReject, Reply
from ._ready import Output
from ._records import EpochRecord, FloorRecord

if TYPE_CHECKING:
    from ._core import PaxosCore


@dataclass(slots=True)
class Epochs:
    """This peer's epoch state; `threshold`, `threshold_nonce` and `established` are durable."""

    threshold: int = 0  # ballots of older epochs are rejected
    threshold_nonce: int = 0  # the nonce of the fence that set the threshold, 0 if none did
    established: int = 0  # known persisted on a majority: ballots may carry it
    heard: int = 0  # the highest epoch heard of in any way (not durable)

    def record(self, out: Output) -> None:
        out.record(EpochRecord(self.threshold, self.threshold_nonce, self.established), sync=True)

    def establish(self, epoch: int, out: Output) -> None:
        """`epoch` is known to be persisted on a majority: ballots may carry it."""
        if epoch > self.established:
            self.established = epoch
            if epoch > self.threshold:
                self.threshold = epoch
                self.threshold_nonce = 0
            self.heard = max(self.heard, epoch)
            self.record(out)

    def raise_threshold(self, epoch: int, out: Output) -> None:
        """A peer persisted `epoch` (we do not know a majority did): reject older ballots."""
        if epoch > self.threshold:
            self.threshold = epoch
            self.threshold_nonce = 0
            self.record(out)


@dataclass(slots=True)
class FenceAttempt:
    """One attempt of this peer's fence, identified by its nonce."""

    epoch: int
    nonce: int
    intact: bool
    acks: dict[int, int] = field(default_factory=dict)  # peer -> highest instance seen
    answered: set[int] = field(default_factory=set)
    wake_at: float = 0.0
    resend_at: dict[int, float] = field(default_factory=dict)  # lost calls, sent again


class Fencer:
    """Runs this peer's fences and answers other peers' fences."""

    def __init__(self, core: PaxosCore, rng: random.Random, boot_id: int) -> None:
        self._core = core
        self._rng = rng
        self._boot_id = boot_id & 0xFFFF_FFFF
        self._counter = 0
        self.attempt: FenceAttempt | None = None
        # An intact fence of our own waits until then (see the module docstring).
        self.not_before = -math.inf
        self.deferred = False

    def needed(self) -> bool:
        """An intact peer must fence before proposing: its threshold is not established."""
        core = self._core
        return not core.recovering and core.epochs.threshold > core.epochs.established

    def wake_times(self) -> list[float]:
        attempt = self.attempt
        if attempt is not None:
            return [attempt.wake_at, *attempt.resend_at.values()]
        if self.deferred:
            return [self.not_before]
        return []

    def request_intact(self, now: float) -> None:
        """A proposal waits for an established epoch: fence now, or once deferring ends."""
        if self.attempt is None:
            if now >= self.not_before:
                self.start(now, intact=True)
            else:
                self.deferred = True

    # ---- this peer's fence --------------------------------------------------------------

    def boot(self, now: float) -> None:
        """A peer that lost its disk votes again only once its fence completes."""
        if self._core.recovering:
            self.start(now, intact=False)

    def start(self, now: float, *, intact: bool) -> None:
        core = self._core
        epochs = core.epochs
        epoch = max(epochs.threshold, epochs.established, epochs.heard) + 1
        self._counter += 1
        nonce = (self._boot_id << 32) | (self._counter & 0xFFFF_FFFF)
        attempt = FenceAttempt(epoch=epoch, nonce=nonce, intact=intact)
        attempt.wake_at = now + _limits.fence_timeout_s
        self.attempt = attempt
        if intact:
            # Our own persisted threshold counts as one of the majority.
            epochs.threshold = epoch
            epochs.threshold_nonce = nonce
            epochs.record(core.out)
            attempt.acks[core.me] = max(core.max_seq, core.floor)
            attempt.answered.add(core.me)
        for peer in range(core.peer_count):
            if peer != core.me:
                core.out.send(peer, Fence(core.me, core.advertised_done, epoch, nonce))
        self._check_done(now)

    def on_reply(self, peer: int, request: Fence, reply: Reply, now: float) -> None:
        core = self._core
        attempt = self.attempt
        if isinstance(reply, FenceReject):
            core.epochs.heard = max(core.epochs.heard, reply.epoch)
            if not core.recovering:
                core.epochs.raise_threshold(reply.epoch, core.out)
        if attempt is None or request.nonce != attempt.nonce:
            return  # an earlier attempt's (or boot's) answer: stale
        attempt.answered.add(peer)
        attempt.resend_at.pop(peer, None)
        if (
            isinstance(reply, FenceAck)
            and reply.nonce == attempt.nonce
            and reply.epoch == attempt.epoch
        ):
            attempt.acks[peer] = reply.seen
            self._check_done(now)
        else:
            self._check_failed(now)

    def on_unreachable(self, peer: int, request: Fence, now: float) -> None:
        attempt = self.attempt
        if attempt is not None and attempt.nonce == request.nonce and peer not in attempt.acks:
            # Same attempt, same nonce: an acker that persisted it acks again, and acks
            # gathered at different times within one attempt are as good (each acker
            # rejects older epochs from its ack on).
            attempt.resend_at[peer] = now + _limits.fence_resend_s

    def tick(self, now: float) -> None:
        core = self._core
        attempt = self.attempt
        if attempt is not None and attempt.wake_at <= now:
            self.attempt = None
            if not attempt.intact or self.needed():
                self.start(now, intact=attempt.intact)
            else:
                core.resume_proposals(now)
        elif attempt is not None:
            for peer, when in list(attempt.resend_at.items()):
                if when <= now:
                    del attempt.resend_at[peer]
                    core.out.send(
                        peer, Fence(core.me, core.advertised_done, attempt.epoch, attempt.nonce)
                    )
        elif self.deferred and self.not_before <= now:
            self.deferred = False
            if self.needed():
                self.start(now, intact=True)
            else:
                core.resume_proposals(now)

    def resume_if_unblocked(self, now: float) -> None:
        """Proposals parked for an intact fence may go on once the epoch is established."""
        attempt = self.attempt
        if not self.needed() and attempt is not None and attempt.intact:
            self.attempt = None
        if not self.needed() and self.attempt is None:
            self._core.resume_proposals(now)

    def _check_done(self, now: float) -> None:
        core = self._core
        epochs = core.epochs
        attempt = self.attempt
        assert attempt is not None
        if len(attempt.acks) < core.quorum:
            return
        self.attempt = None
        if attempt.intact and epochs.threshold != attempt.epoch:
            # We acked a higher fence (or learned a higher epoch) meanwhile: this epoch
            # may not ride in ballots; fence again if still needed.
            if self.needed():
                self.start(now, intact=True)
            else:
                core.resume_proposals(now)
            return
        if not attempt.intact:
            core.floor = max(core.floor, max(attempt.acks.values()))
            core.max_seq = max(core.max_seq, core.floor)
            core.recovering = False
            core.out.record(FloorRecord(core.floor), sync=True)
            core.out.ready.voting = True
        epochs.threshold = max(epochs.threshold, attempt.epoch)
        if epochs.threshold == attempt.epoch:
            epochs.threshold_nonce = attempt.nonce
        epochs.established = max(epochs.established, attempt.epoch)
        epochs.record(core.out)
        core.resume_proposals(now)
        for peer in range(core.peer_count):
            if peer != core.me:
                core.out.send(peer, EpochNotice(core.me, core.advertised_done, attempt.epoch))

    def _check_failed(self, now: float) -> None:
        """Retry soon once this attempt can no longer gather enough acks."""
        core = self._core
        attempt = self.attempt
        assert attempt is not None
        refused = len(attempt.answered) - len(attempt.acks)
        if core.peer_count - refused < core.quorum + (0 if attempt.intact else 1):
            attempt.resend_at.clear()
            attempt.wake_at = min(
                attempt.wake_at,
                now + self._rng.uniform(_limits.fence_retry_min_s, _limits.fence_retry_max_s),
            )

    # ---- other peers' fences ------------------------------------------------------------

    def answer(self, msg: Fence, now: float) -> Reply:
        """An acceptor's answer to a fence; a raised threshold is synced before it leaves."""
        core = self._core
        epochs = core.epochs
        epochs.heard = max(epochs.heard, msg.epoch)
        if core.recovering:
            return FenceBusy(core.me, core.advertised_done, msg.nonce)
        if msg.epoch > epochs.threshold or (
            msg.epoch == epochs.threshold and msg.nonce == epochs.threshold_nonce
        ):
            if msg.epoch > epochs.threshold:
                epochs.threshold = msg.epoch
                epochs.threshold_nonce = msg.nonce
                epochs.record(core.out)
                self.not_before = max(
                    self.not_before,
                    now + self._rng.uniform(_limits.fence_timeout_s / 2, _limits.fence_timeout_s),
                )
            core.out.ready.must_sync = True
            seen = max(core.max_seq, core.floor)
            return FenceAck(core.me, core.advertised_done, msg.epoch, msg.nonce, seen)
        return FenceReject(core.me, core.advertised_done, epochs.threshold, msg.nonce)
