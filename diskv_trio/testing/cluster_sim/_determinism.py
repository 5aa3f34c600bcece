"""What makes one seed one run: the scheduler pinned, the entropy seeded.

Rules kept here:
- Time: `trio.testing.MockClock(autojump_threshold=0)` (set up by `_run`): the clock jumps to
  the next deadline as soon as every task waits, so time is simulated and never read from
  the machine. Server code reads time only through Trio; no thread or socket runs (the
  simulated disk runs blocking calls inline), so nothing outside the run wakes a task.
- Scheduling: Trio runs each batch of runnable tasks in an order drawn from its module's
  `trio._core._run._r` (reversed at random), and wakes tasks whose deadlines tie in an order
  that depends on object ids. With `_ALLOW_DETERMINISTIC_SCHEDULING` (the switch Trio keeps
  for Hypothesis) each batch is sorted by task creation order and shuffled by `_r`, so
  seeding `_r` fixes the order. Both are pinned for the run and restored after it.
- Entropy: `diskv_trio._entropy.seed_run` seeds every id and nonce of the run: the code
  draws ids and nonces only from `_entropy`.
- Nothing else needs pinning: the same seed gives the same digest in another process with
  another PYTHONHASHSEED (tests/sim/test_cluster_sim_determinism.py), so no behaviour depends
  on the iteration order of a set of strings; process ids come from the simulated machine
  (`Host.process_id`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio._core._run as trio_run


@contextmanager
def pinned(seed: int) -> Iterator[None]:
    """Pin Trio's scheduler to `seed` for the block.

    `_entropy.seed_run` must still be called inside the run (its source is a RunVar).
    """
    saved_flag = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    saved_state = trio_run._r.getstate()
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    trio_run._r.seed(f"cluster-sim-scheduler-{seed}")
    try:
        yield
    finally:
        trio_run._r.setstate(saved_state)
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag  # type: ignore[misc]
