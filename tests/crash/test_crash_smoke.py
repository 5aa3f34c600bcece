"""A short crash session in the default suite: the same code as `nox -s crash`, about a minute.

It starts 3 shardmasters and 2 groups of 3 replicas as processes, runs concurrent clients
while the nemesis kills (with and without disk loss, unsynced journal writes lost as on
power loss), pauses and cuts off servers, makes links unreliable and moves shards, heals everything,
then checks the recorded history for linearizability, the final reads, that every server is
alive and serving, and disk use. The seed is random and printed; a failure names the
command that replays it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tools.crash import CrashOptions, print_failed_run_files, run_crash

SMOKE_MINUTES = 0.75
"""Fault period; start-up, recovery and the checks add about 15 s."""


@pytest.mark.slow
async def test_crash_session_smoke(short_tmp: Path) -> None:
    seed = random.SystemRandom().randrange(2**31 - 1)
    options = CrashOptions(
        seed=seed,
        minutes=SMOKE_MINUTES,
        groups=2,
        replicas=3,
        clients=4,
        disk_faults=True,
        directory=short_tmp / "run",
        keep_dir=True,
    )
    print(f"crash smoke seed {seed}: {options.replay_command()}")
    result = await run_crash(options)
    print(result.summary())
    print_failed_run_files(result)
    assert result.op_stats.total() > 0
    assert sum(result.fault_counts.values()) > 0
    assert result.passed, (
        f"crash session failed (seed {seed}): {result.problems}; "
        f"replay: {options.replay_command()}; run directory: {result.run_dir} "
        "(set DISKV_KEEP_TEST_DIRS=1 to keep it)"
    )
