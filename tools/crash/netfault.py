"""Crash sessions on a real network: servers over TCP, each in its own network namespace.

Usage::

    python -m tools.crash.netfault --seed S --minutes M [--groups G --replicas R --clients C]
                                   [--disk-faults] [--keep-dir] [--dir DIR] [--verbose]
    python -m tools.crash.netfault --figures

The session is the crash session (`session.py`: the same clients, recorder, end checks and
linearizability check), with two things swapped: every server runs in its own namespace on
a bridge (`_netns`, `_netns_cluster`), and the network faults are made by the kernel
(`_netns_nemesis`: links down, blackhole routes, tc netem and tbf) beside SIGKILL,
SIGSTOP/SIGCONT and disk loss. Namespaces, links and processes are removed at the end
however the session ends, and leftovers of crashed runs are removed before it starts.

Without the privilege to make namespaces, it prints one line and exits 0 (skipped); where
the kernel has no sch_netem it says so in one line and runs without netem faults.
``--figures`` prints latency and fail-over figures instead (`_netns_figures`).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from diskv_trio.cluster import LocalCluster

from ._events import Timeline
from ._nemesis import Nemesis
from ._netns import NETEM_MISSING, HostNetwork, netem_available, netns_unavailable_reason
from ._netns_cluster import open_netns_cluster
from ._netns_nemesis import net_nemesis_factory
from ._report import CrashOptions, CrashResult, add_session_arguments, report, session_seed
from .session import CLUSTER_NAME, SessionHooks, run_crash

SKIP_PREFIX = "netfault: skipped:"


@dataclass
class NetfaultOptions(CrashOptions):
    """`CrashOptions` whose replay command runs this tool."""

    def replay_command(self) -> str:
        command = (
            f"python -m tools.crash.netfault --seed {self.seed} --minutes {self.minutes:g} "
            f"--groups {self.groups} --replicas {self.replicas} --clients {self.clients}"
        )
        return command + (" --disk-faults" if self.disk_faults else "")


class _NetworkSession:
    """The two `SessionHooks` of a netfault session, sharing the network the first makes."""

    def __init__(self) -> None:
        self.network: HostNetwork | None = None

    @asynccontextmanager
    async def open_cluster(
        self, directory: Path, options: CrashOptions
    ) -> AsyncIterator[LocalCluster]:
        async with open_netns_cluster(
            directory, groups=options.groups, replicas=options.replicas, cluster=CLUSTER_NAME
        ) as (cluster, network):
            self.network = network
            try:
                yield cluster
            finally:
                self.network = None

    def make_nemesis(
        self, cluster: LocalCluster, rng: random.Random, timeline: Timeline
    ) -> Nemesis:
        assert self.network is not None
        timeline.note(
            f"hosts: {', '.join(f'{s.name} {s.address}' for s in cluster.servers.values())}"
        )
        return net_nemesis_factory(self.network)(cluster, rng, timeline)


async def run_netfault(options: NetfaultOptions) -> CrashResult:
    """Run one session on namespaces; the caller checks `netns_unavailable_reason` first.

    Raises:
        NetnsUnavailableError: the namespaces could not be made after all.
    """
    if not netem_available():
        print(f"netfault: {NETEM_MISSING}", flush=True)
    session = _NetworkSession()
    return await run_crash(options, SessionHooks(session.open_cluster, session.make_nemesis))


def _parse(argv: list[str] | None) -> tuple[NetfaultOptions, bool]:
    parser = argparse.ArgumentParser(
        prog="python -m tools.crash.netfault",
        description="Crash session with servers in network namespaces and kernel-made network faults.",
    )
    add_session_arguments(parser)
    parser.add_argument(
        "--figures",
        action="store_true",
        help="print latency and fail-over figures instead of running a session",
    )
    args = parser.parse_args(argv)
    seed = session_seed(parser, args)
    if args.groups * args.replicas + 3 > 99:
        parser.error("at most 96 replicas in all (one namespace each, 99 hosts)")
    options = NetfaultOptions(
        seed=seed,
        minutes=args.minutes,
        groups=args.groups,
        replicas=args.replicas,
        clients=args.clients,
        disk_faults=args.disk_faults,
        directory=args.dir,
        keep_dir=args.keep_dir,
        verbose=args.verbose,
    )
    return options, args.figures


def main(argv: list[str] | None = None) -> int:
    """Exit 0 if every check passed (or namespaces cannot be made here: skipped), else 1."""
    options, figures = _parse(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"{SKIP_PREFIX} {reason}")
        return 0
    if figures:
        from ._netns_figures import print_figures

        trio.run(print_figures)
        return 0
    return report(trio.run(run_netfault, options), options)


if __name__ == "__main__":
    sys.exit(main())
