"""What this peer knows of each other peer: its done value, and how far it has heard ours.

Rules kept here:
- A peer's done value only grows; `min()` is 1 + the minimum over every peer (DESIGN.md 4).
- Our done value rides on every Paxos message. A peer that has not acknowledged the
  advertised value within `done_notice_delay_s` gets a `DoneNotice` on its own, one at a
  time, backing off to `done_notice_retry_max_s` while it is unreachable: the disk-use
  tests need done values to spread without new agreements, the RPC-count test forbids
  idle traffic otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _limits


@dataclass(slots=True)
class PeerProgress:
    """One other peer, as this peer sees it (raft's `tracker.Progress`)."""

    done: int = -1  # the peer's done value, as last heard
    done_acked: int = -1  # the highest of our advertised done values it acknowledged
    notice_at: float = math.inf  # when a DoneNotice is due; inf when none is
    notice_backoff_s: float = _limits.done_notice_delay_s
    notice_inflight: bool = False

    def heard_done(self, done: int) -> None:
        if done > self.done:
            self.done = done

    def acked(self, done: int) -> None:
        self.done_acked = max(self.done_acked, done)

    def advertised(self, done: int, now: float) -> None:
        """We advertise `done` from now on: tell this peer soon unless it knows already."""
        if self.done_acked < done:
            self.notice_backoff_s = _limits.done_notice_delay_s
            if not self.notice_inflight:
                self.notice_at = min(self.notice_at, now + _limits.done_notice_delay_s)

    def notice_answered(self, advertised: int, now: float, *, reached: bool) -> None:
        """Our DoneNotice was answered (`reached`) or could not be delivered."""
        self.notice_inflight = False
        if self.done_acked >= advertised:
            self.notice_backoff_s = _limits.done_notice_delay_s
            return
        if not reached:
            self.notice_backoff_s = min(_limits.done_notice_retry_max_s, self.notice_backoff_s * 2)
        self.notice_at = now + self.notice_backoff_s

    def take_notice(self, advertised: int, now: float) -> bool:
        """True if a DoneNotice should leave now (it is then in flight)."""
        if self.notice_at > now or self.notice_inflight:
            return False
        self.notice_at = math.inf
        if self.done_acked < advertised:
            self.notice_inflight = True
            return True
        return False
