"""A short netfault session in the default suite: servers over TCP, each in its own namespace.

3 shardmasters and 2 groups of 3 replicas, each in a namespace on one bridge; concurrent
clients while the kernel partitions servers from their group (blackhole routes), takes
hosts' links down, slows links (tbf; netem too where the kernel has it), and the nemesis
kills (with disk loss, unsynced writes lost), pauses and moves shards; then every check of
the crash session, the history checked for linearizability, and no namespace or link of
the run left behind. About 40 s; the seed is random and printed with its replay command.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tools.crash import print_failed_run_files
from tools.crash._netns import NAME_PREFIX, names_with_prefix
from tools.crash.netfault import NetfaultOptions, run_netfault

SMOKE_MINUTES = 0.4
"""Fault period; start-up, recovery and the checks add about 10 s."""


@pytest.mark.slow
async def test_netfault_session_smoke(netns_privilege: None, short_tmp: Path) -> None:
    seed = random.SystemRandom().randrange(2**31 - 1)
    options = NetfaultOptions(
        seed=seed,
        minutes=SMOKE_MINUTES,
        groups=2,
        replicas=3,
        clients=4,
        disk_faults=True,
        directory=short_tmp / "run",
        keep_dir=True,
    )
    print(f"netfault smoke seed {seed}: {options.replay_command()}")
    result = await run_netfault(options)
    print(result.summary())
    print_failed_run_files(result)
    assert result.op_stats.total() > 0
    assert all(result.fault_counts[kind] > 0 for kind in ("partition", "isolate", "slow")), (
        result.fault_counts
    )
    assert names_with_prefix(f"{NAME_PREFIX}{os.getpid()}-") == []
    assert result.passed, (
        f"netfault session failed (seed {seed}): {result.problems}; "
        f"replay: {options.replay_command()}; run directory: {result.run_dir}"
    )
