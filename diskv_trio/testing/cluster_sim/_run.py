"""One simulation run: set the cluster up, run clients under faults, heal, check.

Rules kept here:
- `run_simulation` is synchronous: it owns a whole `trio.run` with `MockClock(autojump
  threshold 0)`, the scheduler pinned and the entropy seeded (`_determinism`), so the seed and
  the fault phase's length fix the run, event for event; its trace digest shows it.
- Phases: start every server (bootstrap), join the groups, then clients and the nemesis for
  `fault_s` simulated seconds; heal everything and stop the clients; then the end checks
  (`_checks`) and, after the run, the linearizability check of the whole history.
- A run's problems are collected, never raised: a result says all that went wrong, with the
  command that replays it. Server log records of level ERROR are counted (crashing servers
  log some), not judged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio
import trio.testing

from diskv_trio import _entropy
from diskv_trio.client import Client
from diskv_trio.kvproto import Sharding
from diskv_trio.net import Identity, Role, open_rpc_pool
from diskv_trio.shardmaster import ShardmasterClerk
from diskv_trio.testing.linearizability import (
    HistoryRecorder,
    Operation,
    Verdict,
    check_history,
    format_report,
)

from . import _checks
from ._agreement import AgreementCheck
from ._cluster import CLUSTER_NAME, SimCluster, layout, running_cluster
from ._determinism import pinned
from ._nemesis import Nemesis
from ._params import SimParams
from ._trace import Trace
from ._workload import Workload, WorkloadStats

REPLICAS = 3
"""Replicas per group, shardmasters included."""

SETUP_DEADLINE_S = 60.0
"""The cluster must have joined every group within this long of starting."""

CHECK_TIMEOUT_S = 60.0
"""Real seconds the linearizability check may take before its verdict is 'unknown'."""

STALL_REAL_S = 60.0
"""A run whose simulated clock stands still this many real seconds spins (tasks runnable
for ever at one instant): the watchdog ends it as a failure rather than hang."""

RUNNER = "python -m diskv_trio.testing.cluster_sim"


@dataclass(frozen=True, slots=True)
class Hooks:
    """Ways for a test to break a run on purpose, to show that a check notices.

    Attributes:
        cluster_started: called once every group has joined, with the cluster.
        history: given the recorded history before it is checked; returns the one to check.
    """

    cluster_started: Callable[[SimCluster], None] | None = None
    history: Callable[[list[Operation]], list[Operation]] | None = None


@dataclass(frozen=True, slots=True)
class SimResult:
    """What one run did and found.

    Attributes:
        params: the run's choices (its seed among them).
        problems: everything that went wrong; empty when the run passed.
        digest: digest of the run's trace: equal digests, equal runs.
        events: events in the trace.
        sim_s: simulated seconds the run lasted.
        real_s: real seconds it took (the linearizability check not included).
        check_s: real seconds of the linearizability check.
        ops: client ops recorded; `unknown_ops` of them without a known outcome.
        faults: faults applied, by kind.
        decided_instances: Paxos instances seen decided (every group).
        writes_sent: network writes; `writes_lost` of them lost (faults and cuts).
        errors_logged: ERROR records the servers logged (crashing servers log some).
        trace_lines: the last events as text, when asked for.
    """

    params: SimParams
    problems: tuple[str, ...]
    digest: str
    events: int
    sim_s: float
    real_s: float
    check_s: float
    ops: int
    unknown_ops: int
    faults: tuple[tuple[str, int], ...]
    decided_instances: int
    writes_sent: int
    writes_lost: int
    errors_logged: int
    trace_lines: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self.sim_s / self.real_s if self.real_s > 0 else float("inf")

    def replay_command(self) -> str:
        return f"{RUNNER} --seed {self.params.seed} --seconds {self.params.fault_s:g}"

    def summary(self) -> str:
        faults = ",".join(f"{kind}:{count}" for kind, count in self.faults) or "none"
        return (
            f"seed {self.params.seed}: {'ok' if self.ok else 'FAILED'}; {self.sim_s:.1f} sim s in"
            f" {self.real_s:.1f} s ({self.speed:.1f}x), check {self.check_s:.1f} s; {self.ops} ops"
            f" ({self.unknown_ops} unknown), {self.decided_instances} instances, faults {faults};"
            f" digest {self.digest}"
        )


class _Watchdog:
    """A thread that ends a run whose simulated clock stops moving (see `STALL_REAL_S`).

    It only reads the clock until it trips; then it cancels the run through its Trio token.
    Nothing it does reaches the run otherwise, so it cannot change one.
    """

    def __init__(self, clock: trio.testing.MockClock, stall_s: float) -> None:
        self._clock = clock
        self._stall_s = stall_s
        self._stop = threading.Event()
        self.tripped: str | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(
            target=self._watch, name="cluster-sim-watchdog", daemon=True
        )

    def arm(self, scope: trio.CancelScope) -> None:
        """Called from the run: what to cancel."""
        self._token = trio.lowlevel.current_trio_token()
        self._scope = scope
        self._thread.start()

    def disarm(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        last = self._clock.current_time()
        moved_at = time.monotonic()
        while not self._stop.wait(1.0):
            now = self._clock.current_time()
            if now != last:
                last, moved_at = now, time.monotonic()
            elif time.monotonic() - moved_at > self._stall_s:
                self.tripped = (
                    f"stall: simulated time stood at {now:.6f} s for {self._stall_s:g} real s"
                )
                assert self._token is not None and self._scope is not None
                self._token.run_sync_soon(self._scope.cancel)
                return


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class _Outcome:
    problems: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    recorder: HistoryRecorder = field(
        default_factory=lambda: HistoryRecorder(clock=trio.current_time)
    )
    agreement: AgreementCheck = field(default_factory=AgreementCheck)
    writes: tuple[int, int] = (0, 0)
    sim_s: float = 0.0


def run_simulation(
    params: SimParams, *, trace_lines: int = 0, hooks: Hooks | None = None, verbose: bool = False
) -> SimResult:
    """Run the simulation `params` stand for (see the module docstring).

    Args:
        params: `SimParams.draw(seed, seconds)`.
        trace_lines: keep this many of the last events as text.
        hooks: break the run on purpose (tests of the checks).
        verbose: let the servers' log (INFO and up) through to the root logger.
    """
    hooks = hooks or Hooks()
    trace = Trace(trace_lines)
    outcome = _Outcome()
    logger = logging.getLogger("diskv")
    counter = _ErrorCounter()
    saved = (logger.level, logger.propagate)
    logger.addHandler(counter)
    logger.setLevel(logging.INFO if verbose else logging.ERROR)
    logger.propagate = verbose
    started = time.perf_counter()
    clock = trio.testing.MockClock(autojump_threshold=0)
    watchdog = _Watchdog(clock, STALL_REAL_S)
    try:
        with pinned(params.seed):
            trio.run(_simulate, params, trace, outcome, hooks, watchdog, clock=clock)
    finally:
        watchdog.disarm()
        logger.removeHandler(counter)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    real_s = time.perf_counter() - started
    ops = outcome.recorder.operations()
    if hooks.history is not None:
        ops = hooks.history(ops)
    check_started = time.perf_counter()
    problems = list(outcome.problems)
    if watchdog.tripped is not None:
        problems.append(watchdog.tripped)
    problems += [f"agreement: {violation}" for violation in outcome.agreement.violations]
    result = check_history(ops, timeout_s=CHECK_TIMEOUT_S)
    if result.verdict is Verdict.ILLEGAL:
        problems.append(
            f"linearizability: the history is not linearizable\n{format_report(result)}"
        )
    elif result.verdict is Verdict.UNKNOWN:
        problems.append(f"linearizability: no verdict within {CHECK_TIMEOUT_S:g} s")
    return SimResult(
        params=params,
        problems=tuple(problems),
        digest=trace.digest(),
        events=trace.count,
        sim_s=outcome.sim_s,
        real_s=real_s,
        check_s=time.perf_counter() - check_started,
        ops=len(ops),
        unknown_ops=sum(op.unknown for op in ops),
        faults=tuple(sorted(outcome.faults.items())),
        decided_instances=outcome.agreement.instances,
        writes_sent=outcome.writes[0],
        writes_lost=outcome.writes[1],
        errors_logged=counter.count,
        trace_lines=tuple(trace.lines),
    )


async def _simulate(
    params: SimParams, trace: Trace, outcome: _Outcome, hooks: Hooks, watchdog: _Watchdog
) -> None:
    _entropy.seed_run(f"cluster-sim-entropy-{params.seed}")
    rng = random.Random(f"cluster-sim-{params.seed}")
    trace.event("params", params.describe())
    specs = layout(params.groups, REPLICAS)
    with trio.CancelScope() as scope:
        watchdog.arm(scope)
        async with running_cluster(
            specs, Sharding(params.shards), rng, trace, outcome.agreement
        ) as cluster:
            try:
                await _phases(params, cluster, rng, outcome, hooks)
            finally:
                outcome.problems += cluster.failures
                outcome.writes = (cluster.network.writes_sent, cluster.network.writes_lost)
    outcome.sim_s = trio.current_time()


async def _phases(
    params: SimParams, cluster: SimCluster, rng: random.Random, outcome: _Outcome, hooks: Hooks
) -> None:
    problems = outcome.problems
    operator = Identity(CLUSTER_NAME, Role.OPERATOR, "operator")
    async with open_rpc_pool(
        operator, credentials=cluster.credentials, transport=cluster.client_host("operator")
    ) as pool:
        clerk = ShardmasterClerk(cluster.masters, pool)
        with trio.move_on_after(SETUP_DEADLINE_S) as setup:
            for gid in cluster.gids:
                await clerk.join(gid, cluster.addresses(gid))
        if setup.cancelled_caught:
            problems.append(f"setup: the groups did not join within {SETUP_DEADLINE_S:g} s")
            return
        if hooks.cluster_started is not None:
            hooks.cluster_started(cluster)
        keys = [f"key-{i}" for i in range(params.keys)]
        workload = Workload(
            cluster,
            outcome.recorder,
            random.Random(rng.getrandbits(64)),
            clients=params.clients,
            keys=keys,
            op_timeout_s=params.op_timeout_s,
        )
        nemesis = Nemesis(
            cluster,
            params,
            random.Random(rng.getrandbits(64)),
            clerk,
            [*workload.hosts, "operator", "checker"],
        )
        cluster.trace.event("faults-begin")
        async with trio.open_nursery() as phase:
            phase.start_soon(workload.run)
            await nemesis.run(trio.current_time() + params.fault_s)
            await nemesis.heal_all(problems)
            workload.stop()
        outcome.faults = dict(nemesis.applied)
        cluster.trace.event("healed")
        await _end_checks(cluster, clerk, outcome, keys, workload.stats)


async def _end_checks(
    cluster: SimCluster,
    clerk: ShardmasterClerk,
    outcome: _Outcome,
    keys: list[str],
    stats: WorkloadStats,
) -> None:
    problems = outcome.problems
    if not await _checks.wait_all_serving(cluster, problems):
        return
    config = await _checks.give_every_group_a_shard(clerk, cluster.gids, problems)
    if config is None:
        return
    checker = Identity(CLUSTER_NAME, Role.CLIENT, "checker")
    async with open_rpc_pool(
        checker, credentials=cluster.credentials, transport=cluster.client_host("checker")
    ) as pool:
        kv = Client(cluster.masters, pool)
        reads = [*keys, *_checks.probe_keys(config)]
        before = len(problems)
        await _checks.final_reads(kv, outcome.recorder, -1, reads, stats, problems)
        if len(problems) > before:
            problems.append(f"state at the end:\n{_checks.describe_groups(cluster)}")
    await _checks.check_convergence(cluster, problems)
