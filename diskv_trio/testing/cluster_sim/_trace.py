"""The run's trace: every event of the simulation folded into one digest.

Rules kept here:
- An event is its simulated time and a few plain fields (names, numbers, a CRC of the bytes
  moved); it is hashed as it happens, so the digest says whether two runs were the same
  event for event, without holding the events in memory.
- With `keep_lines`, the last so many events are also kept as text, to diff two runs that
  should have been the same (`--trace FILE` of the runner writes them).
"""

from __future__ import annotations

import hashlib
from collections import deque

import trio


class Trace:
    """Events of one run (see the module docstring).

    Args:
        keep_lines: how many of the latest events to keep as text (0: none).
    """

    def __init__(self, keep_lines: int = 0) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.count = 0
        self.lines: deque[str] = deque(maxlen=keep_lines or None)
        self._keep = keep_lines > 0

    def event(self, kind: str, *fields: object) -> None:
        """Record one event now (simulated time)."""
        text = f"{trio.current_time():.9f} {kind} {' '.join(map(str, fields))}"
        self._hash.update(text.encode())
        self._hash.update(b"\n")
        self.count += 1
        if self._keep:
            self.lines.append(text)

    def digest(self) -> str:
        """Hex digest of every event so far."""
        return self._hash.hexdigest()
