"""A rate-limited log for problems that callers, peers or the log itself may repeat.

Rules kept here:
- At most `LINES_PER_PERIOD_MAX` lines per `PERIOD_S`; the rest are counted, and the count
  is reported with the next line that gets through. A log full of one bad entry replayed
  after every restart, or a peer sending junk in a loop, cannot fill the disk.
- Text that came from elsewhere is shown with `describe()`: a `reprlib` repr, escaped and
  bounded in length and depth, never the raw value.
"""

from __future__ import annotations

import logging
import reprlib
import time
from collections.abc import Callable

PERIOD_S = 10.0
"""Length of one rate-limiting window."""

LINES_PER_PERIOD_MAX = 10
"""Lines logged per window; enough to see a pattern, too few to matter on disk."""

DESCRIBE_CHARS_MAX = 200
"""Longest description of a foreign value in one line."""

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlevel = 4


def describe(value: object) -> str:
    """A short, escaped description of `value` for a log line."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a value whose repr fails is still worth a line
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= DESCRIBE_CHARS_MAX else text[: DESCRIBE_CHARS_MAX - 3] + "..."


class RateLimitedLog:
    """Logs errors to `logger`, at most `LINES_PER_PERIOD_MAX` per `PERIOD_S` of `clock`."""

    def __init__(
        self, logger: logging.Logger, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._clock = clock
        self._window_start = -PERIOD_S
        self._lines = 0
        self.suppressed = 0
        """Lines dropped since the last one logged."""

    def error(self, message: str, *args: object) -> bool:
        """Log `message % args` as an error unless over the rate; return whether it was logged."""
        return self._log(logging.ERROR, message, *args)

    def warning(self, message: str, *args: object) -> bool:
        """Log `message % args` as a warning unless over the rate; return whether it was logged."""
        return self._log(logging.WARNING, message, *args)

    def _log(self, level: int, message: str, *args: object) -> bool:
        now = self._clock()
        if now - self._window_start >= PERIOD_S:
            self._window_start = now
            self._lines = 0
        if self._lines >= LINES_PER_PERIOD_MAX:
            self.suppressed += 1
            return False
        self._lines += 1
        if self.suppressed:
            message += " (%d similar lines suppressed)"
            args = (*args, self.suppressed)
            self.suppressed = 0
        self._logger.log(level, message, *args)
        return True
