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
- Entropy: `diskv_trio._entropy.seed_run` seeds every id and nonce of the run. Modules not
  yet drawing from `_entropy` (`UNSEEDED_MODULES`: their owners are changing them) are
  bridged for the run by replacing their `os` / `secrets` name with one that draws from it;
  when they call `_entropy` themselves the bridge finds nothing to replace and can go.
- Nothing else needs pinning: the same seed gives the same digest in another process with
  another PYTHONHASHSEED (tests/sim/test_cluster_sim_determinism.py), so no behaviour depends
  on the iteration order of a set of strings; process ids come from the simulated machine
  (`Host.process_id`).
"""

from __future__ import annotations

import importlib
import os
import secrets
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio._core._run as trio_run

from diskv_trio import _entropy

UNSEEDED_MODULES: dict[str, str] = {
    "diskv_trio.paxos._peer": "secrets",
    "diskv_trio.rsm._rsm": "os",
    "diskv_trio.client": "os",
}
"""Modules that still draw ids from `os.urandom` / `secrets`, and the name they use."""


class _SeededOs(types.ModuleType):
    """`os`, except that `urandom` draws from `_entropy`."""

    def __init__(self) -> None:
        super().__init__("os")

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def urandom(count: int) -> bytes:
        return _entropy.token_bytes(count)


class _SeededSecrets(types.ModuleType):
    """`secrets`, except that its draws come from `_entropy`."""

    def __init__(self) -> None:
        super().__init__("secrets")

    def __getattr__(self, name: str) -> Any:
        return getattr(secrets, name)

    randbits = staticmethod(_entropy.randbits)
    token_bytes = staticmethod(_entropy.token_bytes)
    token_hex = staticmethod(_entropy.token_hex)


_SHIMS: dict[str, types.ModuleType] = {"os": _SeededOs(), "secrets": _SeededSecrets()}


@contextmanager
def pinned(seed: int) -> Iterator[None]:
    """Pin Trio's scheduler to `seed` and bridge `UNSEEDED_MODULES` for the block.

    `_entropy.seed_run` must still be called inside the run (its source is a RunVar).
    """
    saved_flag = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    saved_state = trio_run._r.getstate()
    replaced: list[tuple[types.ModuleType, str, Any]] = []
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    trio_run._r.seed(f"cluster-sim-scheduler-{seed}")
    try:
        for module_name, attribute in UNSEEDED_MODULES.items():
            module = importlib.import_module(module_name)
            original = getattr(module, attribute, None)
            if original is _SHIMS[attribute] or original is None:
                continue
            replaced.append((module, attribute, original))
            setattr(module, attribute, _SHIMS[attribute])
        yield
    finally:
        for module, attribute, original in replaced:
            setattr(module, attribute, original)
        trio_run._r.setstate(saved_state)
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag  # type: ignore[misc]
