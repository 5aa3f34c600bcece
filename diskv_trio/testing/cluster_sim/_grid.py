"""Simulated instants on a grid: deliveries and disk completions happen at whole milliseconds.

Why: with autojump, each distinct instant at which a task wakes costs one pass of Trio's run
loop, nearly all of it overhead when a single task runs in it. On a 1 ms grid, writes and
fsyncs that would finish a fraction of a millisecond apart finish together and their tasks run
in one pass (in the order the pinned scheduler draws): about half the passes, nearly twice the
speed. Delays and jitter still differ by whole milliseconds, and the order within an instant
is shuffled, so reordering is not lost.
"""

from __future__ import annotations

import math

GRID_S = 0.001
"""The grid's step: below every link delay and disk latency the simulation draws."""

ROUNDING_S = 1e-9
"""Float error tolerated when placing an instant on the grid."""


def on_grid(instant: float) -> float:
    """The first grid instant at or after `instant` (never before it)."""
    return max(math.ceil((instant - ROUNDING_S) / GRID_S) * GRID_S, instant)
