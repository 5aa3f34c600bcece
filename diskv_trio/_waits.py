"""Why a retrying caller is still waiting, and the typed error it gets when its time is up.

Rules kept here:
- A retry loop never gives up on its own (the caller bounds it with a deadline); it records
  why it retries, so that whoever waits can say what for.
- Each new cause is logged once at DEBUG when it changes, not once per attempt, so a loop that
  retries every 100 ms does not flood the log.
- `fail_after` is `trio.fail_after` whose error carries the last cause; it subclasses
  `trio.TooSlowError`, so `except trio.TooSlowError` still catches it. Plain Trio scopes
  (`move_on_after`, `fail_after`) keep their usual behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio

log = logging.getLogger("diskv.client")


@dataclass(frozen=True, slots=True)
class WaitCause:
    """One reason a call was retried.

    Attributes:
        detail: a sentence for a person, e.g. "group 101: no replica answers (3 tried)".
        since_s: Trio clock time at which this cause was first seen (repeats keep it).
    """

    detail: str
    since_s: float

    def __str__(self) -> str:
        return self.detail


class WaitTracker:
    """The last reason a retry loop gave, logged at DEBUG whenever it changes."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self.last: WaitCause | None = None

    def note(self, detail: str) -> None:
        """Record why the loop is about to retry."""
        if self.last is not None and self.last.detail == detail:
            return
        self._log.debug("retrying: %s", detail)
        self.last = WaitCause(detail, trio.current_time())

    def clear(self) -> None:
        """The call went through: nothing is being waited for any more."""
        self.last = None


class WaitTimeoutError(trio.TooSlowError):
    """Raised by `fail_after` when the deadline passes while a call was still being retried.

    Attributes:
        seconds: the time the caller allowed.
        cause: the last reason a retry happened, None if the call never had to retry.
    """

    def __init__(self, seconds: float, cause: WaitCause | None) -> None:
        reason = f": {cause.detail}" if cause is not None else ""
        super().__init__(f"gave up after {seconds:g} s{reason}")
        self.seconds = seconds
        self.cause = cause


@contextmanager
def fail_after(seconds: float, tracker: WaitTracker) -> Iterator[trio.CancelScope]:
    """Like `trio.fail_after`, raising `WaitTimeoutError` with `tracker`'s last cause.

    Raises:
        WaitTimeoutError: the block did not finish within `seconds`.
    """
    tracker.clear()
    with trio.move_on_after(seconds) as scope:
        yield scope
    if scope.cancelled_caught:
        raise WaitTimeoutError(seconds, tracker.last)
