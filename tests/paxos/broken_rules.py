"""Deliberately broken variants of the Paxos rules, one set of core parts each (tests only).

Each variant overrides the one method of `Acceptor`, `Leader`, `Fencer` or `Learner` that
keeps a rule of DESIGN.md section 4, and is handed to the simulations as `CoreParts`; they
must catch every one of them.
"""

from __future__ import annotations

from typing import Any

from diskv_trio.paxos._acceptor import Acceptor
from diskv_trio.paxos._ballot import Ballot
from diskv_trio.paxos._fence import Fencer
from diskv_trio.paxos._leader import Leader
from diskv_trio.paxos._learner import Learner
from diskv_trio.paxos._messages import RangePrepare
from diskv_trio.paxos._parts import CoreParts
from diskv_trio.paxos._snapshot import InstanceState


class _ReadWithoutRound(Leader):
    def read_needs_round(self, now: float) -> bool:
        return False


class _ReadIndexBelowTakeover(Leader):
    def read_index(self) -> int:
        return self._core.decided_max


class _CountsItselfUnchecked(Leader):
    def own_acceptor_counts(self) -> bool:
        return True


class _ChosenIsCommitIndex(Leader):
    def chosen_upto(self) -> int:
        core = self._core
        seq = core.min_seq
        while core.is_decided(seq):
            seq += 1
        return seq - 1

    def steps_down_when_replaced(self) -> bool:
        return False


class _CountsUncoveredPromises(Leader):
    def covered_from_promises(self) -> int | None:
        return self.from_seq if len(self.promises) >= self._core.quorum else None


class _OwnLeaseNotHonoured(Leader):
    def grants_own_lease(self) -> bool:
        return False


class _MarksAnyBallot(Acceptor):
    def may_mark(self, inst: InstanceState, ballot: Ballot) -> bool:
        return inst.accepted is not None


class _PromisesAtFloor(Acceptor):
    def range_start(self, msg: RangePrepare) -> int:
        return max(msg.seq, self._core.min_seq)


class _RangeOmitsAbove(Acceptor):
    def range_report(self, start: int) -> tuple[tuple[int, Ballot, Any], ...]:
        return tuple(row for row in super().range_report(start) if row[0] == start)


class _NoBootWait(Acceptor):
    def boot_wait_over(self, now: float) -> bool:
        return True


class _GrantNotHonoured(Acceptor):
    """Keeps the boot wait but promises another ballot while its lease grant is in force."""

    def refuses_promise(self, ballot: Ballot, now: float) -> bool:
        return self._core.lease_s is not None and not self.boot_wait_over(now)


class _NoRecoveryFence(Fencer):
    def boot(self, now: float) -> None:
        pass  # a peer that lost its disk does not fence


class _RejoinOnFirstDecision(Learner):
    """Votes again as soon as it learns one decision, with no floor: instances it may have
    voted in before the disk loss are open to it again."""

    def learn(self, seq: int, value: Any, now: float) -> None:
        core = self._core
        new = seq >= core.min_seq and not core.is_decided(seq)
        super().learn(seq, value, now)
        if new and core.recovering:
            core.recovering = False
            core.out.ready.voting = True
            core.resume_proposals(now)


# The naive rule for a peer that lost its disk, in place of the fence (`_fence.py`).
NAIVE_REJOIN = CoreParts(fencer=_NoRecoveryFence, learner=_RejoinOnFirstDecision)

BROKEN: dict[str, CoreParts] = {
    "read-without-round": CoreParts(leader=_ReadWithoutRound),
    "read-index-below-takeover": CoreParts(leader=_ReadIndexBelowTakeover),
    "counts-itself-unchecked": CoreParts(leader=_CountsItselfUnchecked),
    "chosen-is-commit-index": CoreParts(leader=_ChosenIsCommitIndex),
    "marks-any-ballot": CoreParts(acceptor=_MarksAnyBallot),
    "promises-at-floor": CoreParts(acceptor=_PromisesAtFloor),
    "range-omits-above": CoreParts(acceptor=_RangeOmitsAbove),
    "counts-uncovered-promises": CoreParts(leader=_CountsUncoveredPromises),
    "lease-no-boot-wait": CoreParts(acceptor=_NoBootWait),
    "lease-own-grant-not-honoured": CoreParts(leader=_OwnLeaseNotHonoured),
    "lease-grant-not-honoured": CoreParts(acceptor=_GrantNotHonoured),
}
