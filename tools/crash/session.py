"""Crash sessions: a seeded nemesis against a real local cluster under concurrent clients.

Usage::

    python -m tools.crash --seed S --minutes M [--groups G --replicas R --clients C]
                          [--keep-dir] [--disk-faults] [--via native|resp] [--dir DIR] [--verbose]

The seed is printed first; the same seed replays the same choices of faults, targets, keys
and operations (their timing, and so the interleaving, differs from run to run). A session:
start shardmasters and groups as processes, join the groups, run the clients while the
nemesis breaks servers (one fault at a time, then several), heal everything, then check:

- every group serves a Get again, and every key reads back (final reads, in the history);
- the whole history (final reads included) is linearizable; an undecided check fails too;
- every server process is alive, intact and serving;
- every server directory is within a bound of its group's live data.

With ``--disk-faults`` the servers keep unsynced journal writes in memory
(``DISKV_JOURNAL_HOLD_UNSYNCED=1``), so a SIGKILL also loses what was not yet synced, as a
power loss would. With ``--via resp`` the clients speak the Redis protocol through a
`RespGateway` in front of the cluster (`_resp.py`), checked the same way. A failure
keeps the run directory (server logs, history, timeline, the failing key's report and
Porcupine JSON), prints the replay command and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from diskv_trio.client import connect
from diskv_trio.cluster import ClusterError, LocalCluster, open_local_cluster
from diskv_trio.testing.linearizability import (
    HistoryRecorder,
    Verdict,
    check_history,
    write_porcupine_json,
    write_report,
)
from journal import HOLD_UNSYNCED_ENV

from ._checks import (
    check_disk,
    check_servers,
    final_reads,
    give_every_group_a_shard,
    latest_config,
    probe_every_group,
)
from ._events import Timeline
from ._nemesis import Nemesis
from ._report import CrashOptions, CrashResult, add_session_arguments, report, session_seed
from ._resp import PinnableClock, RespWorkload
from ._workload import Workload, session_keys

CLUSTER_NAME = "crash"

JOIN_TIMEOUT_S = 60.0
"""Joining the groups on a freshly started cluster (before any fault) must finish by then."""

CHECK_S_MIN = 60.0
"""Least time budget of the linearizability check; longer runs get two seconds per second run."""


@asynccontextmanager
async def _local_cluster(directory: Path, options: CrashOptions) -> AsyncIterator[LocalCluster]:
    async with open_local_cluster(
        directory, groups=options.groups, replicas=options.replicas, cluster=CLUSTER_NAME
    ) as cluster:
        yield cluster


@dataclass(frozen=True)
class SessionHooks:
    """Where a session's servers run and what breaks them: Unix sockets on this host and the
    `Nemesis` by default; `netfault.py` gives servers in network namespaces and kernel faults."""

    open_cluster: Callable[[Path, CrashOptions], AbstractAsyncContextManager[LocalCluster]] = (
        _local_cluster
    )
    make_nemesis: Callable[[LocalCluster, random.Random, Timeline], Nemesis] = Nemesis


@contextmanager
def _hold_unsynced(enabled: bool) -> Iterator[None]:
    """Servers started inside inherit DISKV_JOURNAL_HOLD_UNSYNCED=1 when `enabled`."""
    if not enabled:
        yield
        return
    previous = os.environ.get(HOLD_UNSYNCED_ENV)
    os.environ[HOLD_UNSYNCED_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[HOLD_UNSYNCED_ENV]
        else:
            os.environ[HOLD_UNSYNCED_ENV] = previous


async def run_crash(options: CrashOptions, hooks: SessionHooks | None = None) -> CrashResult:
    """Run one crash session and check it; never raises for a failed check (see `problems`).

    Raises:
        FileExistsError: `options.directory` is not empty.
    """
    print(f"crash session: seed {options.seed}   (replay: {options.replay_command()})", flush=True)
    started = time.monotonic()
    if options.directory is None:
        run_dir = Path(tempfile.mkdtemp(prefix="diskv-crash-", dir="/tmp"))
    else:
        run_dir = options.directory.resolve()
        if run_dir.exists() and any(run_dir.iterdir()):
            # Servers would restart on an old session's directories instead of bootstrapping.
            raise FileExistsError(f"run directory {run_dir} is not empty")
        run_dir.mkdir(parents=True, exist_ok=True)
    result = CrashResult(options, run_dir)
    timeline = Timeline(origin=started, echo=options.verbose)
    clock = PinnableClock()
    recorder = HistoryRecorder(clock=clock)
    keys = session_keys(options.key_count)
    try:
        with _hold_unsynced(options.disk_faults):
            await _session(
                options, run_dir, keys, recorder, clock, timeline, result, hooks or SessionHooks()
            )
    except (ClusterError, trio.TooSlowError) as exc:
        timeline.problem(f"cluster failed outside the nemesis: {type(exc).__name__}: {exc}")
    ops = recorder.operations()
    check_s_max = max(CHECK_S_MIN, 2 * options.minutes * 60)
    check_started = time.monotonic()
    check = await trio.to_thread.run_sync(lambda: check_history(ops, timeout_s=check_s_max))
    result.check_s = time.monotonic() - check_started
    result.verdict = check.verdict
    if check.verdict is Verdict.ILLEGAL:
        timeline.problem(f"history not linearizable: key {check.failing_key!r}")
    elif check.verdict is Verdict.UNKNOWN:
        timeline.problem(
            f"linearizability not proven within {check_s_max:g} s (key {check.failing_key!r})"
        )
    if check.verdict is not Verdict.OK:
        write_report(check, run_dir / "history-report.txt")
        write_porcupine_json(check.failing_ops, run_dir / "history-porcupine.json")
    result.problems = list(timeline.problems)
    result.fault_counts = timeline.fault_counts
    result.targeted_counts = timeline.targeted_counts
    result.leader_counts = timeline.leader_counts
    result.elapsed_s = time.monotonic() - started
    if result.passed and not options.keep_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        recorder.save(run_dir / "history.jsonl")
        timeline.write(run_dir / "timeline.txt")
    return result


async def _session(
    options: CrashOptions,
    run_dir: Path,
    keys: list[str],
    recorder: HistoryRecorder,
    clock: PinnableClock,
    timeline: Timeline,
    result: CrashResult,
    hooks: SessionHooks,
) -> None:
    rng = random.Random(f"{options.seed}-nemesis")
    async with hooks.open_cluster(run_dir / "cluster", options) as cluster:
        nemesis = hooks.make_nemesis(cluster, rng, timeline)
        try:
            with trio.fail_after(JOIN_TIMEOUT_S):
                for gid in cluster.gids:
                    await cluster.join(gid)
                await nemesis.learn_node_ids()
            timeline.note(f"cluster up: {len(cluster.servers)} servers, groups {cluster.gids}")
            workload: Workload | RespWorkload
            if options.via == "resp":
                workload = RespWorkload(
                    cluster.masters,
                    CLUSTER_NAME,
                    recorder,
                    clock,
                    timeline,
                    seed=options.seed,
                    clients=options.clients,
                    keys=keys,
                    credentials=cluster.credentials,
                )
            else:
                workload = Workload(
                    cluster.masters,
                    CLUSTER_NAME,
                    recorder,
                    seed=options.seed,
                    clients=options.clients,
                    keys=keys,
                    credentials=cluster.credentials,
                )
            result.op_stats = workload.stats
            checker_id = options.clients
            async with connect(
                cluster.masters, cluster=CLUSTER_NAME, credentials=cluster.credentials
            ) as kv:
                async with trio.open_nursery() as nursery:
                    await nursery.start(workload.run)
                    await nemesis.run(options.minutes * 60, actors=options.actors)
                    await nemesis.heal_all()
                    await give_every_group_a_shard(cluster, timeline)
                    await probe_every_group(
                        cluster, kv, recorder, checker_id, workload.stats, timeline
                    )
                    workload.stop()
                timeline.note("clients stopped; final reads")
                values = await final_reads(kv, recorder, checker_id, keys, workload.stats, timeline)
            result.applied, statuses = await check_servers(cluster, timeline)
            (run_dir / "status.json").write_text(json.dumps(statuses, indent=1, default=str) + "\n")
            config = await latest_config(cluster, timeline)
            result.disk = await check_disk(cluster, config, values, timeline)
        finally:
            nemesis.resume_all_now()


def _parse(argv: list[str] | None) -> CrashOptions:
    parser = argparse.ArgumentParser(
        prog="python -m tools.crash",
        description="Seeded crash session against a local diskv cluster, checked for linearizability.",
    )
    add_session_arguments(parser)
    parser.add_argument(
        "--via",
        choices=("native", "resp"),
        default="native",
        help="clients use the Trio client, or RESP through the gateway (default %(default)s)",
    )
    args = parser.parse_args(argv)
    seed = session_seed(parser, args)
    return CrashOptions(
        seed=seed,
        minutes=args.minutes,
        groups=args.groups,
        replicas=args.replicas,
        clients=args.clients,
        disk_faults=args.disk_faults,
        via=args.via,
        directory=args.dir,
        keep_dir=args.keep_dir,
        verbose=args.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    """Run a session from the command line: exit 0 if every check passed, else 1."""
    options = _parse(argv)
    return report(trio.run(run_crash, options), options)
