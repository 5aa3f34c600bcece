"""The leader teaches lagging followers what they missed, with decides (no new ballot).

A follower that missed an accept (a lost message, a restart, a partition) cannot mark
that instance decided from "chosen up to c": it holds no value accepted at the leader's
ballot there. A classic proposal to learn it would promise a ballot above the leader's
and depose it, so instead the leader, which knows the instance decided, sends `Decide`.

Rules kept here:
- A follower is lagging when the done value it reports (the application calls `done`
  after applying, so it is "applied up to") has not moved for `catch_up_after_s` while
  the leader knows the next instance decided.
- At most `catch_up_batch` decides per follower per `catch_up_after_s`: bounded work,
  and a follower that is merely slow to apply gets nothing it did not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _limits
from ._messages import Decide

if TYPE_CHECKING:
    from ._core import PaxosCore


class CatchUp:
    """Per follower: the done value it last reported, and since when."""

    def __init__(self, core: PaxosCore) -> None:
        self._core = core
        self._seen: dict[int, tuple[int, float]] = {}

    def reset(self) -> None:
        self._seen = {}

    def on_done(self, peer: int, done: int, now: float) -> None:
        core = self._core
        if peer == core.me:
            return
        previous = self._seen.get(peer)
        if previous is None or previous[0] != done:
            self._seen[peer] = (done, now)
            return
        if now - previous[1] < _limits.catch_up_after_s:
            return
        first = max(done + 1, core.min_seq)
        sent = False
        for seq in range(first, first + _limits.catch_up_batch):
            inst = core.instances.get(seq)
            if inst is None or not inst.decided:
                continue
            core.out.send(peer, Decide(core.me, core.advertised_done, seq, inst.value))
            sent = True
        if sent:
            self._seen[peer] = (done, now)
