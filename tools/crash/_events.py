"""The crash session's timeline: what the nemesis did and what went wrong, with times.

Times are `time.monotonic()` seconds, the clock of the recorded client history, so a
failing key's report can be read beside the faults that were active at each instant.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Timeline:
    """Events (faults applied and healed) and problems (failed checks) of one session."""

    origin: float = field(default_factory=time.monotonic)
    echo: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fault_counts: Counter[str] = field(default_factory=Counter)
    targeted_counts: Counter[str] = field(default_factory=Counter)
    """Faults that struck one server, by kind."""
    leader_counts: Counter[str] = field(default_factory=Counter)
    """Of those, the ones whose server led its group when it was chosen."""

    def note(self, text: str) -> None:
        """Record an event now."""
        now = time.monotonic()
        self.events.append((now, text))
        if self.echo:
            print(f"  {now - self.origin:8.2f}s  {text}", flush=True)

    def fault(self, kind: str, text: str, *, leader: bool | None = None) -> None:
        """Record that a fault of `kind` was applied; `leader`: whether the server it struck
        led its group (None: it struck no one server)."""
        self.fault_counts[kind] += 1
        if leader is not None:
            self.targeted_counts[kind] += 1
            self.leader_counts[kind] += leader
            text += " (its group's leader)" if leader else ""
        self.note(text)

    def problem(self, text: str) -> None:
        """Record a failed check: the session fails."""
        self.problems.append(text)
        self.note("PROBLEM: " + text)

    def write(self, path: Path) -> None:
        """Write the timeline, one event a line: seconds since start, monotonic time, text."""
        with path.open("w", encoding="utf-8") as out:
            for at, text in self.events:
                out.write(f"{at - self.origin:10.3f}  {at:.6f}  {text}\n")
