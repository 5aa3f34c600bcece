"""Reads without a log entry (DESIGN.md section 4): ReadIndex rounds and leases, for `Leader`.

Rules kept here:
- A read takes c = max(highest instance known decided, T, L - 1) when it arrives (a new
  leader's "known decided" is stale until its takeover instances are decided again).
- It is confirmed by a heartbeat round sent after it arrived and answered "ok" (nothing
  above our ballot promised) by a majority; our own acceptor counts only if it promised
  nothing above our ballot, else we step down. One round carrying reads is in flight at a
  time; the reads that arrive meanwhile ride together on the next.
- With leases (off by default), a round's majority lets reads go without a round until
  its send time + lease - drift; our own acceptor grants our ballot when we send it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _limits
from ._ballot import Ballot
from ._messages import Heartbeat, HeartbeatReply

if TYPE_CHECKING:
    from ._core import PaxosCore


@dataclass(slots=True)
class ReadRound:
    """One heartbeat round and the reads that arrived before it was sent: (read id, index)."""

    number: int
    sent_at: float
    reads: list[tuple[int, int]]
    acks: set[int] = field(default_factory=set)


class ReadRounds:
    """The read side of `Leader` (a mixin: it uses the leader's ballot and role)."""

    _core: PaxosCore
    ballot: Ballot | None
    rounds: dict[int, ReadRound]
    round_count: int
    pending_reads: list[tuple[int, int]]
    lease_until: float
    read_floor: int
    wake_at: float

    @property
    def leading(self) -> bool:
        raise NotImplementedError

    def step_down(self, now: float) -> None:
        raise NotImplementedError

    def chosen_upto(self) -> int:
        raise NotImplementedError

    def see(self, ballot: Ballot | None) -> None:
        raise NotImplementedError

    def read_index(self) -> int:
        """Rule 5: every instance a read must include."""
        return max(self._core.decided_max, self.read_floor)

    def own_acceptor_counts(self) -> bool:
        """Rule 5: our acceptor answers our round "ok" only if it promised nothing above b."""
        promised = self._core.promised_max
        return promised is None or (self.ballot is not None and promised <= self.ballot)

    def grants_own_lease(self) -> bool:
        """Leases: our acceptor grants our ballot when we send a round, like any other."""
        return True

    def read_needs_round(self, now: float) -> bool:
        return not (self._core.lease_s is not None and now < self.lease_until)

    def read(self, read_id: int, now: float) -> None:
        """Rule 5: confirm a read now (lease) or on the next round; refuse if not leading."""
        out = self._core.out
        if not self.leading:
            out.ready.reads_failed.append(read_id)
            return
        index = self.read_index()
        if not self.read_needs_round(now):
            out.ready.reads.append((read_id, index))
            return
        self.pending_reads.append((read_id, index))
        if not self._reads_in_flight():
            self.send_round(now)

    def send_round(self, now: float) -> None:
        """A heartbeat round; it confirms the reads that arrived before now."""
        core = self._core
        confirms = bool(self.pending_reads) or core.lease_s is not None
        if confirms and not self.own_acceptor_counts():
            self.step_down(now)
            return
        assert self.ballot is not None
        self.wake_at = now + _limits.heartbeat_interval_s
        self.round_count += 1
        # A round without reads confirms nothing: our acceptor need not be asked.
        round_ = ReadRound(
            self.round_count, now, self.pending_reads, {core.me} if confirms else set()
        )
        self.pending_reads = []
        self.rounds[round_.number] = round_
        if core.lease_s is not None and self.grants_own_lease():
            core.acceptor.grant = (self.ballot, now + core.lease_s)
        chosen = self.chosen_upto()
        for peer in range(core.peer_count):
            if peer != core.me:
                core.out.send(
                    peer,
                    Heartbeat(core.me, core.advertised_done, self.ballot, chosen, round_.number),
                )
        self._check_round(round_, now)

    def _on_heartbeat_reply(
        self, peer: int, request: Heartbeat, reply: HeartbeatReply, now: float
    ) -> None:
        core = self._core
        self.see(reply.promised)
        if not self.leading:
            return
        assert self.ballot is not None
        if not reply.ok:
            if reply.epoch > self.ballot.epoch:
                core.epochs.raise_threshold(reply.epoch, core.out)
                self.step_down(now)
            elif reply.promised is not None and reply.promised > self.ballot:
                self.step_down(now)
            return
        round_ = self.rounds.get(request.round)
        if round_ is not None:
            round_.acks.add(peer)
            self._check_round(round_, now)

    def _check_round(self, round_: ReadRound, now: float) -> None:
        core = self._core
        if len(round_.acks) < core.quorum:
            return
        del self.rounds[round_.number]
        core.out.ready.reads.extend(round_.reads)
        if core.lease_s is not None:
            self.lease_until = max(
                self.lease_until, round_.sent_at + core.lease_s - _limits.lease_drift_s
            )
        if self.pending_reads and not self._reads_in_flight():
            self.send_round(now)

    def _reads_in_flight(self) -> bool:
        """One round carrying reads at a time; later reads ride together on the next."""
        return any(round_.reads for round_ in self.rounds.values())
