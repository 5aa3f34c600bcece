"""The learner: decisions, done values, and forgetting below `min()`.

Rules kept here (DESIGN.md section 4):
- Learning a decision is always safe. It is journalled without a sync (it can be learned
  again); when the accepted value is the decided one the record does not repeat it.
- `min()` is 1 + the minimum of every peer's done value, and never below the end of a state
  the application installed; instances below it are dropped.
- A peer advertises its done value only after a sync that followed the `done()` call, so
  it never tells others to forget an instance whose decision is not durable here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._messages import DoneNotice
from ._ready import Ready
from ._records import DecideRecord, MinRecord
from ._snapshot import InstanceState

if TYPE_CHECKING:
    from ._core import PaxosCore


class Learner:
    """What one peer knows is decided, and what it may forget; its state lives on the core."""

    def __init__(self, core: PaxosCore) -> None:
        self._core = core

    def learn(self, seq: int, value: Any, now: float) -> None:
        """`value` is decided in `seq` (from a decide, an acceptor, or our own majority)."""
        core = self._core
        if seq < core.min_seq:
            return
        core.see(seq)
        inst = core.instances.setdefault(seq, InstanceState())
        if inst.decided:
            assert inst.value == value, f"instance {seq}: decided {inst.value!r} then {value!r}"
            return
        if inst.accepted is None or not (inst.value is value or inst.value == value):
            record = DecideRecord(seq, value)
        else:
            record = DecideRecord(seq, None, carries_value=False)  # the accept holds the value
        inst.decided = True
        inst.value = value
        core.out.record(record, sync=False)
        core.out.ready.decided.append((seq, value))
        core.decided_max = max(core.decided_max, seq)
        core.proposer.proposals.pop(seq, None)
        core.leader.on_learned(seq, value, now)

    # ---- done values ----------------------------------------------------------------------

    def done(self, seq: int) -> None:
        core = self._core
        if seq > core.own_done:
            core.own_done = seq
            core.out.ready.advertise_done = seq
            core.out.ready.must_sync = True  # decisions up to seq durable before we advertise
            self.forget()

    def truncate(self, upto: int) -> None:
        core = self._core
        if upto + 1 > core.min_adopted:
            core.min_adopted = upto + 1
            core.see(upto)
            self.forget()

    def advertised(self, ready: Ready, now: float) -> None:
        """The driver synced after `done()`: the new done value may be told to the others."""
        core = self._core
        if ready.advertise_done is not None and ready.advertise_done > core.advertised_done:
            core.advertised_done = ready.advertise_done
            for peer, progress in enumerate(core.progress):
                if peer != core.me:
                    progress.advertised(core.advertised_done, now)

    def heard_done(self, peer: int, done: int) -> None:
        core = self._core
        if peer != core.me:
            core.progress[peer].heard_done(done)

    def send_notices(self, now: float) -> None:
        """Tell the peers that have not heard our done value (`_progress.py` paces this)."""
        core = self._core
        for peer, progress in enumerate(core.progress):
            if peer != core.me and progress.take_notice(core.advertised_done, now):
                core.out.send(peer, DoneNotice(src=core.me, done=core.advertised_done))

    # ---- forgetting -----------------------------------------------------------------------

    def forget(self) -> None:
        """Raise `min()` to what every peer is done with, and drop what lies below it."""
        core = self._core
        dones = [progress.done for progress in core.progress]
        dones[core.me] = core.own_done
        new_min = max(1 + min(dones), core.min_adopted)
        if new_min <= core.min_seq:
            return
        core.min_seq = new_min
        self.drop_below_min()
        others = tuple((p, pp.done) for p, pp in enumerate(core.progress) if p != core.me)
        core.out.record(MinRecord(new_min, others), sync=False)
        core.out.ready.forgotten = True

    def drop_below_min(self) -> None:
        core = self._core
        for seq in [seq for seq in core.instances if seq < core.min_seq]:
            del core.instances[seq]
        core.proposer.drop_below(core.min_seq)
