"""Deliberately broken variants of the leader's rules, one core class each (tests only).

Each variant overrides the one method of `Acceptor` or `Leader` that keeps a rule of
DESIGN.md section 4; the simulations must catch every one of them.
"""

from __future__ import annotations

from typing import Any

from diskv_trio.paxos import PaxosCore
from diskv_trio.paxos._acceptor import Acceptor
from diskv_trio.paxos._ballot import Ballot
from diskv_trio.paxos._leader import Leader
from diskv_trio.paxos._messages import RangePrepare
from diskv_trio.paxos._records import InstanceState


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


def _core(name: str, **parts: Any) -> type[PaxosCore]:
    return type(name, (PaxosCore,), {key.upper() + "_CLASS": value for key, value in parts.items()})


BROKEN: dict[str, type[PaxosCore]] = {
    "read-without-round": _core("ReadWithoutRound", leader=_ReadWithoutRound),
    "read-index-below-takeover": _core("ReadIndexBelowTakeover", leader=_ReadIndexBelowTakeover),
    "counts-itself-unchecked": _core("CountsItselfUnchecked", leader=_CountsItselfUnchecked),
    "chosen-is-commit-index": _core("ChosenIsCommitIndex", leader=_ChosenIsCommitIndex),
    "marks-any-ballot": _core("MarksAnyBallot", acceptor=_MarksAnyBallot),
    "promises-at-floor": _core("PromisesAtFloor", acceptor=_PromisesAtFloor),
    "range-omits-above": _core("RangeOmitsAbove", acceptor=_RangeOmitsAbove),
    "counts-uncovered-promises": _core("CountsUncoveredPromises", leader=_CountsUncoveredPromises),
    "lease-no-boot-wait": _core("LeaseNoBootWait", acceptor=_NoBootWait),
    "lease-own-grant-not-honoured": _core("OwnLeaseNotHonoured", leader=_OwnLeaseNotHonoured),
}
