"""A seed fixes a whole cluster run: the same seed twice gives the same trace, event for
event, in this process and in another one (with another string-hash seed); other seeds give
other runs.

How: a short run with faults is made twice here and once by the runner in a subprocess, and
their trace digests (and here the events themselves) are compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from diskv_trio.testing.cluster_sim import SimParams, SimResult, run_simulation

SEED = 3
SECONDS = 8.0
TRACE_LINES = 1_000_000


@pytest.fixture(scope="module")
def first_run() -> SimResult:
    result = run_simulation(SimParams.draw(SEED, SECONDS), trace_lines=TRACE_LINES)
    assert result.ok, "\n".join(result.problems)
    return result


def test_the_same_seed_twice_is_the_same_run_event_for_event(first_run: SimResult) -> None:
    again = run_simulation(SimParams.draw(SEED, SECONDS), trace_lines=TRACE_LINES)
    assert first_run.events > 1_000 and sum(count for _, count in first_run.faults) > 0
    assert again.trace_lines == first_run.trace_lines
    assert again.digest == first_run.digest
    assert (again.ops, again.decided_instances) == (first_run.ops, first_run.decided_instances)


def test_other_seeds_are_other_runs(first_run: SimResult) -> None:
    digests = {first_run.digest} | {
        run_simulation(SimParams.draw(seed, 2.0)).digest for seed in (SEED + 1, SEED + 2)
    }
    assert len(digests) == 3


def test_the_runner_replays_the_run_in_another_process(first_run: SimResult) -> None:
    """The replay command a failure prints gives the same digest elsewhere."""
    env = dict(os.environ, PYTHONHASHSEED="12345")
    command = first_run.replay_command().split()
    assert command[:3] == ["python", "-m", "diskv_trio.testing.cluster_sim"]
    done = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    digest = re.search(r"digest ([0-9a-f]{32})", done.stdout)
    assert digest is not None, done.stdout
    assert digest.group(1) == first_run.digest
