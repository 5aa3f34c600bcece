"""What a crash session runs and what came of it, and the report printed at its end.

Shared by the crash session (`session.py`) and the network one (`netfault.py`): both print
the same summary and verdict, and on a failure the command that replays the session.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from diskv_trio.testing.linearizability import Verdict

from ._checks import DiskFigures
from ._nemesis_settings import LEADER_TARGET_CHANCE
from ._workload import WorkloadStats

SEED_MAX = 2**31 - 1


@dataclass
class CrashOptions:
    """What a session runs; `replay_command` reproduces it."""

    seed: int
    minutes: float
    groups: int = 2
    replicas: int = 3
    clients: int = 6
    disk_faults: bool = False
    via: Literal["native", "resp"] = "native"
    """How the clients reach the cluster: "native" (the Trio client) or "resp" (the gateway)."""
    directory: Path | None = None
    keep_dir: bool = False
    verbose: bool = False

    def replay_command(self) -> str:
        command = (
            f"python -m tools.crash --seed {self.seed} --minutes {self.minutes:g} "
            f"--groups {self.groups} --replicas {self.replicas} --clients {self.clients}"
        )
        command += " --disk-faults" if self.disk_faults else ""
        return command + (f" --via {self.via}" if self.via != "native" else "")

    @property
    def key_count(self) -> int:
        """Keys used: as many as clients, at least four, so few writers share one key."""
        return max(4, self.clients)

    @property
    def actors(self) -> int:
        """Concurrent fault actors in the combined phase: one per group, plus two."""
        return self.groups + 2


@dataclass
class CrashResult:
    """The outcome of one session."""

    options: CrashOptions
    run_dir: Path
    problems: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    op_stats: WorkloadStats = field(default_factory=WorkloadStats)
    fault_counts: Counter[str] = field(default_factory=Counter)
    targeted_counts: Counter[str] = field(default_factory=Counter)
    """Faults that struck one server, by kind."""
    leader_counts: Counter[str] = field(default_factory=Counter)
    """Of those, the ones that struck the server leading its group."""
    disk: DiskFigures | None = None
    applied: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    check_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and self.verdict is Verdict.OK

    def summary(self) -> str:
        stats = self.op_stats
        lines = [
            f"ops: {stats.total()} ({', '.join(f'{k} {stats.ok[k]} ok/{stats.unknown[k]} unknown' for k in sorted(stats.ok | stats.unknown))})",
            "faults: "
            + (", ".join(f"{k} {n}" for k, n in sorted(self.fault_counts.items())) or "none"),
            *self._leader_line(),
            f"linearizability: {self.verdict.value if self.verdict else 'not checked'}"
            f" (check took {self.check_s:.1f} s)",
        ]
        if self.disk is not None and self.disk.used:
            name, ratio = self.disk.worst()
            lines.append(
                f"disk: {sum(self.disk.used.values()):,} bytes in all; fullest {name} "
                f"{self.disk.used[name]:,} bytes = {ratio:.0%} of its bound"
            )
        if self.applied:
            lines.append(
                "applied instance at the end: "
                + ", ".join(f"{name} {seq}" for name, seq in sorted(self.applied.items()))
            )
        lines.append(f"session took {self.elapsed_s:.1f} s")
        return "\n".join(lines)

    def _leader_line(self) -> list[str]:
        """How many of the faults that struck one server struck its group's leader."""
        targeted = sum(self.targeted_counts.values())
        if not targeted:
            return []
        kinds = ", ".join(
            f"{kind} {self.leader_counts[kind]}/{n}"
            for kind, n in sorted(self.targeted_counts.items())
        )
        return [
            f"faults on a leader: {sum(self.leader_counts.values())} of {targeted} that struck one "
            f"server ({kinds}; the leader is aimed at with chance {LEADER_TARGET_CHANCE:g})"
        ]


def print_failed_run_files(result: CrashResult) -> None:
    """For a failed session, the tail of its history report and timeline (a test's output)."""
    if result.passed:
        return
    for name in ("history-report.txt", "timeline.txt"):
        path = result.run_dir / name
        if path.exists():
            print(f"---- {name} ----")
            print(path.read_text()[-20_000:])


def report(result: CrashResult, options: CrashOptions) -> int:
    """Print a session's summary and verdict (with its replay command on failure); the exit status."""
    print(result.summary())
    if result.passed:
        print(f"PASSED (seed {options.seed})")
        if options.keep_dir:
            print(f"run directory: {result.run_dir}")
        return 0
    print(f"FAILED (seed {options.seed}):")
    for problem in result.problems:
        print(f"  - {problem}")
    print(f"run directory: {result.run_dir}")
    print(f"replay: {options.replay_command()}")
    return 1


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every crash session takes (`session.py`, `netfault.py`), in one place."""
    parser.add_argument("--seed", type=int, help="seed of the session (default: random, printed)")
    parser.add_argument(
        "--minutes", type=float, default=1.0, help="fault period (default %(default)s)"
    )
    parser.add_argument(
        "--groups", type=int, default=2, help="replica groups (default %(default)s)"
    )
    parser.add_argument(
        "--replicas", type=int, default=3, help="replicas per group (default %(default)s)"
    )
    parser.add_argument(
        "--clients", type=int, default=6, help="concurrent clients (default %(default)s)"
    )
    parser.add_argument(
        "--disk-faults",
        action="store_true",
        help="lose unsynced journal writes on SIGKILL (power loss)",
    )
    parser.add_argument("--dir", type=Path, help="run directory (default: a new one under /tmp)")
    parser.add_argument(
        "--keep-dir", action="store_true", help="keep the run directory after a pass"
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="print the nemesis timeline live"
    )


def session_seed(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Refuse bad values of `add_session_arguments` (exits with usage); the seed to run."""
    if args.groups < 1 or args.replicas < 1 or args.clients < 1 or args.minutes < 0:
        parser.error("--groups, --replicas and --clients must be >= 1 and --minutes >= 0")
    if args.dir is not None and args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"--dir {args.dir} is not empty: give a new directory")
    return args.seed if args.seed is not None else random.SystemRandom().randrange(SEED_MAX)
