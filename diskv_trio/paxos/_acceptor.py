"""The acceptor: classic prepares and accepts, range prepares, heartbeats, "chosen up to c".

Rules kept here (DESIGN.md section 4):

1. Promise a ballot not below the promised one; accept a ballot not below the promised one;
   both journalled and synced before the reply. The promise in force for instance i is the
   higher of i's own promise and the range promise, if that covers i. A decided instance
   answers every prepare and accept with its value.
2. A recovering peer answers no prepare, accept or heartbeat; an intact one votes only
   above its floor and rejects ballots of epochs below its threshold (`_fence.py`).
3. A range promise `(b, from n)` is given only if no instance >= its start holds a higher
   promise; its start is `max(n, floor + 1, min())` (never at or below the floor); it
   reports every accepted value at or above its start and every decided value at or above
   n. A new range promise never uncovers an instance the previous one covered.
4. "Chosen up to c at b" marks decided only instances this acceptor accepted at exactly b.
5. A heartbeat of ballot b is answered "ok" only if nothing above b was promised here.
6. Leases (only with `lease_s`): acking a heartbeat of b at t grants b until t + lease: no
   other ballot is promised before then; after any boot, no ballot is promised for one
   lease length (grants are not journalled).

Each rule a test breaks on purpose is one small method (`range_start`, `range_report`,
`may_mark`, `boot_wait_over`), overridden in `tests/paxos/broken_rules.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _limits
from ._ballot import Ballot
from ._messages import (
    Accept,
    Accepted,
    AlreadyDecided,
    Forgotten,
    Heartbeat,
    HeartbeatReply,
    LeaderAccept,
    NotVoting,
    Prepare,
    Promise,
    RangePrepare,
    RangePromise,
    Rejected,
    Reply,
    StaleEpoch,
)
from ._records import AcceptRecord, PromiseRecord, RangePromiseRecord
from ._snapshot import InstanceState

if TYPE_CHECKING:
    from ._core import PaxosCore


class Acceptor:
    """The voting side of one peer; its durable state lives on the core."""

    def __init__(self, core: PaxosCore) -> None:
        self._core = core
        self.grant: tuple[Ballot, float] | None = None  # lease granted: (ballot, until)
        self._marked: tuple[Ballot, int] | None = None  # "chosen up to" scanned so far

    # ---- rules tests may break --------------------------------------------------------

    def range_start(self, msg: RangePrepare) -> int:
        """The first instance a range promise covers: never at or below the floor."""
        core = self._core
        return max(msg.seq, core.floor + 1, core.min_seq)

    def range_report(self, start: int) -> tuple[tuple[int, Ballot, Any], ...]:
        """Every accepted, undecided value at or above `start`."""
        return tuple(
            (seq, inst.accepted, inst.value)
            for seq, inst in sorted(self._core.instances.items())
            if seq >= start and inst.accepted is not None and not inst.decided
        )

    def may_mark(self, inst: InstanceState, ballot: Ballot) -> bool:
        """An instance under "chosen up to c at `ballot`" is decided here only if accepted at it."""
        return inst.accepted == ballot

    def boot_wait_over(self, now: float) -> bool:
        core = self._core
        return core.lease_s is None or now >= core.boot_at + core.lease_s

    # ---- queries ----------------------------------------------------------------------

    def promised_at(self, seq: int, inst: InstanceState) -> Ballot | None:
        promised = inst.promised
        ranged = self._core.range_promise
        if ranged is not None and seq >= ranged[1] and (promised is None or ranged[0] > promised):
            return ranged[0]
        return promised

    def refuses_promise(self, ballot: Ballot, now: float) -> bool:
        """Leases only: a grant to another ballot is in force, or the boot wait is not over."""
        if self._core.lease_s is None:
            return False
        if not self.boot_wait_over(now):
            return True
        grant = self.grant
        return grant is not None and grant[0] != ballot and now < grant[1]

    # ---- classic ----------------------------------------------------------------------

    def on_prepare(self, msg: Prepare, now: float) -> Reply:
        core = self._core
        early = self._precheck(msg.seq, msg.ballot)
        if early is not None:
            return early
        if self.refuses_promise(msg.ballot, now):
            return NotVoting(core.me, core.advertised_done, msg.seq, msg.ballot)
        inst = core.instances.setdefault(msg.seq, InstanceState())
        promised = self.promised_at(msg.seq, inst)
        if promised is not None and msg.ballot < promised:
            return Rejected(core.me, core.advertised_done, msg.seq, msg.ballot, promised)
        core.epochs.establish(msg.ballot.epoch, core.out)
        if inst.promised != msg.ballot:
            assert inst.promised is None or msg.ballot > inst.promised
            inst.promised = msg.ballot
            core.out.record(PromiseRecord(msg.seq, msg.ballot), sync=True)
            self._note_promise(msg.ballot)
        else:
            core.out.ready.must_sync = True  # a repeated promise still waits for the first's sync
        return Promise(
            core.me,
            core.advertised_done,
            msg.seq,
            msg.ballot,
            inst.accepted,
            inst.value if inst.accepted is not None else None,
        )

    def on_accept(self, msg: Accept | LeaderAccept, now: float) -> Reply:
        core = self._core
        early = self._precheck(msg.seq, msg.ballot)
        if early is not None:
            return early
        inst = core.instances.setdefault(msg.seq, InstanceState())
        promised = self.promised_at(msg.seq, inst)
        if promised is not None and msg.ballot < promised:
            return Rejected(core.me, core.advertised_done, msg.seq, msg.ballot, promised)
        core.epochs.establish(msg.ballot.epoch, core.out)
        if inst.accepted != msg.ballot:
            inst.promised = msg.ballot
            inst.accepted = msg.ballot
            inst.value = msg.value
            core.out.record(AcceptRecord(msg.seq, msg.ballot, msg.value), sync=True)
            self._note_promise(msg.ballot)
        else:
            core.out.ready.must_sync = True
        assert inst.accepted is not None and inst.promised is not None
        assert inst.accepted <= inst.promised
        return Accepted(core.me, core.advertised_done, msg.seq, msg.ballot)

    def _precheck(self, seq: int, ballot: Ballot) -> Reply | None:
        """The answers that do not depend on the ballot's order: forgotten, decided, no vote."""
        core = self._core
        if seq < core.min_seq:
            return Forgotten(core.me, core.advertised_done, seq, core.min_seq)
        core.see(seq)
        inst = core.instances.get(seq)
        if inst is not None and inst.decided:
            return AlreadyDecided(core.me, core.advertised_done, seq, inst.value)
        core.epochs.heard = max(core.epochs.heard, ballot.epoch)
        if core.recovering or seq <= core.floor:
            return NotVoting(core.me, core.advertised_done, seq, ballot)
        if ballot.epoch < core.epochs.threshold:
            return StaleEpoch(core.me, core.advertised_done, seq, ballot, core.epochs.threshold)
        return None

    def _note_promise(self, ballot: Ballot) -> None:
        core = self._core
        if core.promised_max is None or ballot > core.promised_max:
            core.promised_max = ballot

    # ---- the leader's messages --------------------------------------------------------

    def on_range_prepare(self, msg: RangePrepare, now: float) -> Reply:
        """Phase 1 for every instance >= msg.seq at once (rule 3)."""
        core = self._core
        epochs = core.epochs
        epochs.heard = max(epochs.heard, msg.ballot.epoch)
        if core.recovering or self.refuses_promise(msg.ballot, now):
            return NotVoting(core.me, core.advertised_done, msg.seq, msg.ballot)
        if msg.ballot.epoch < epochs.threshold:
            return StaleEpoch(core.me, core.advertised_done, msg.seq, msg.ballot, epochs.threshold)
        start = self.range_start(msg)
        current = core.range_promise
        if current is not None and msg.ballot < current[0]:
            return Rejected(core.me, core.advertised_done, msg.seq, msg.ballot, current[0])
        for seq, inst in core.instances.items():
            if seq >= start and not inst.decided and inst.promised is not None:
                if inst.promised > msg.ballot:
                    return Rejected(
                        core.me, core.advertised_done, msg.seq, msg.ballot, inst.promised
                    )
        epochs.establish(msg.ballot.epoch, core.out)
        low = start if current is None else min(current[1], start)
        if current != (msg.ballot, low):
            assert current is None or msg.ballot >= current[0]
            core.range_promise = (msg.ballot, low)
            core.out.record(RangePromiseRecord(low, msg.ballot), sync=True)
            self._note_promise(msg.ballot)
        else:
            core.out.ready.must_sync = True
        decided = tuple(
            (seq, inst.value)
            for seq, inst in sorted(core.instances.items())
            if seq >= msg.seq and inst.decided
        )
        return RangePromise(
            core.me, core.advertised_done, msg.ballot, start, self.range_report(start), decided
        )

    def on_leader_accept(self, msg: LeaderAccept, now: float) -> Reply:
        reply = self.on_accept(msg, now)
        if isinstance(reply, Accepted):
            self._core.leader.follow(msg.ballot, now)
        if not self._core.recovering:
            self.mark_chosen(msg.ballot, msg.chosen, now)
        return reply

    def on_heartbeat(self, msg: Heartbeat, now: float) -> Reply:
        """Rule 5; an ok also resets the election timer and, with leases, grants one."""
        core = self._core
        promised = core.promised_max
        ok = (
            not core.recovering
            and msg.ballot.epoch >= core.epochs.threshold
            and (promised is None or promised <= msg.ballot)
        )
        if ok:
            core.leader.follow(msg.ballot, now)
            if core.lease_s is not None:
                self.grant = (msg.ballot, now + core.lease_s)
        if not core.recovering:
            self.mark_chosen(msg.ballot, msg.chosen, now)
        return HeartbeatReply(
            core.me,
            core.advertised_done,
            msg.ballot,
            msg.round,
            ok,
            promised,
            core.epochs.threshold,
        )

    def mark_chosen(self, ballot: Ballot, chosen: int, now: float) -> None:
        """Rule 4, over at most `chosen_scan_max` instances per message."""
        core = self._core
        marked = self._marked
        low = marked[1] + 1 if marked is not None and marked[0] == ballot else core.min_seq
        low = max(low, core.min_seq)
        high = min(chosen, core.max_seq, low + _limits.chosen_scan_max - 1)
        last = low - 1
        stuck = False
        for seq in range(low, high + 1):
            inst = core.instances.get(seq)
            if inst is not None and not inst.decided and self.may_mark(inst, ballot):
                core.learn(seq, inst.value, now)
            if not stuck and (inst is None or not inst.decided):
                stuck = True  # not accepted at `ballot` yet: scan it again next time
            if not stuck:
                last = seq
        if high >= low:
            self._marked = (ballot, last)
