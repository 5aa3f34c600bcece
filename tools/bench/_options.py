"""Options shared by the benchmarks: how long each load phase runs.

`python -m tools.bench --seconds S` (or `DISKV_BENCH_SECONDS=S`) shortens or lengthens the
load phases of the benches that read it (kv, kvprofile, pysyncobj), e.g. for a quick look.
"""

from __future__ import annotations

import os

SECONDS_ENV = "DISKV_BENCH_SECONDS"


def load_seconds(default: float) -> float:
    """Seconds of one load phase: `DISKV_BENCH_SECONDS` if set to a positive number, else `default`."""
    text = os.environ.get(SECONDS_ENV, "")
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value > 0 else default
