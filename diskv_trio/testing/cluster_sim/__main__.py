"""Run many seeds of the cluster simulation; print each failing seed with its replay command.

``python -m diskv_trio.testing.cluster_sim --seeds N [--seed S] [--seconds T]`` runs seeds S,
S+1, ..., S+N-1 (S random and printed when not given), each with a fault phase of T simulated
seconds, and exits 1 if any failed. ``--seed S`` alone replays one seed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from ._params import SECONDS_DEFAULT, SimParams
from ._run import RUNNER, run_simulation

SEED_MAX = 2**32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=RUNNER, description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds to run (default 1)")
    parser.add_argument("--seed", type=int, help="the first seed (default: random, printed)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=SECONDS_DEFAULT,
        help=f"simulated seconds of each run's fault phase (default {SECONDS_DEFAULT:g})",
    )
    parser.add_argument("--trace", help="write the replayed run's events here (one seed only)")
    parser.add_argument("--verbose", action="store_true", help="show the servers' warnings")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.seconds <= 0:
        parser.error("--seeds and --seconds must be positive")
    if args.trace and args.seeds != 1:
        parser.error("--trace needs a single seed")
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(SEED_MAX)
    print(
        f"{RUNNER}: seeds {first}..{first + args.seeds - 1}, {args.seconds:g} s of faults each",
        flush=True,
    )
    failed: list[str] = []
    sim_s = real_s = 0.0
    started = time.perf_counter()
    for seed in range(first, first + args.seeds):
        params = SimParams.draw(seed, args.seconds)
        result = run_simulation(
            params, trace_lines=10**7 if args.trace else 0, verbose=args.verbose
        )
        sim_s += result.sim_s
        real_s += result.real_s
        print(result.summary(), flush=True)
        if args.trace:
            with open(args.trace, "w", encoding="utf-8") as out:
                out.write("\n".join(result.trace_lines) + "\n")
        if not result.ok:
            print(f"  {params.describe()}")
            for problem in result.problems:
                print("  " + problem.replace("\n", "\n    "))
            print(f"  replay: {result.replay_command()}", flush=True)
            failed.append(result.replay_command())
    elapsed = time.perf_counter() - started
    print(
        f"{args.seeds - len(failed)} of {args.seeds} seeds passed; {sim_s:.0f} simulated s in"
        f" {real_s:.0f} s of simulation ({sim_s / max(real_s, 1e-9):.1f} simulated s per s),"
        f" {elapsed:.0f} s in all"
    )
    for command in failed:
        print(f"FAILED: {command}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
