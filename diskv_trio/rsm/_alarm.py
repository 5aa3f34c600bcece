"""The NOSPACE alarm: a full disk pauses a server's writes instead of stopping it.

Rules kept here (after etcd's NOSPACE alarm):
- The alarm is raised when a journal sync or a snapshot fails for lack of space, and
  cleared by the first later one that succeeds; each cause ("journal", "snapshot") is
  cleared only by its own kind of success.
- While it is raised, nobody waiting for a sync is answered (a Paxos promise or accept
  that is not durable is never sent), and client ops, which would need this replica's log,
  are refused with `ErrNoSpace`; reads of the applied state (status, state transfer, shard
  pulls) go on, and the other replicas of the group serve the clients.
- One waiter at a time retries, every `NOSPACE_RETRY_S`; the others wait for its outcome,
  so a full disk costs one failed write a second, however many callers wait.
"""

from __future__ import annotations

import logging

import trio
from trio_util import AsyncValue

log = logging.getLogger("diskv.storage")

NOSPACE_RETRY_S = 1.0
"""Pause between attempts to write again on a full disk: each attempt rewrites the
unsynced tail of the journal, and space rarely comes back faster than an operator acts."""

ALARM_NOSPACE = "nospace"


class NoSpaceAlarm:
    """Whether the server's disk is full, with the causes that say so."""

    def __init__(self) -> None:
        self._causes: set[str] = set()
        self._changed = trio.Event()
        self._retrier_waiting = False
        self.raised_count = 0
        self.raised: AsyncValue[bool] = AsyncValue(False)
        """Mirrors `active`, for tasks that act when it changes (a leader steps down)."""

    @property
    def active(self) -> bool:
        return bool(self._causes)

    def has_cause(self, cause: str) -> bool:
        return cause in self._causes

    def describe(self) -> str | None:
        """`"nospace"` while raised (for `rsm.status`), else None."""
        return ALARM_NOSPACE if self._causes else None

    def raise_alarm(self, cause: str, error: Exception) -> None:
        if not self._causes:
            self.raised_count += 1
            log.error("NOSPACE alarm: %s; client ops are refused until space returns", error)
        self._causes.add(cause)
        self.raised.value = True

    def clear(self, cause: str) -> None:
        if cause not in self._causes:
            return
        self._causes.discard(cause)
        if not self._causes:
            log.warning("NOSPACE alarm cleared: the disk takes writes again")
            self.raised.value = False
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_retry_turn(self) -> None:
        """Return when the caller should try its write again.

        At once if the alarm is clear; otherwise one caller returns after
        `NOSPACE_RETRY_S` (or as soon as the alarm clears) and the others wait for the
        alarm to clear or for that caller to give up its turn.
        """
        while self._causes:
            if self._retrier_waiting:
                await self._changed.wait()
                continue
            self._retrier_waiting = True
            try:
                with trio.move_on_after(NOSPACE_RETRY_S):
                    await self._changed.wait()
                return
            finally:
                self._retrier_waiting = False
                self._signal()
