"""`nox -s bench`: every benchmark, each printing its figures beside a baseline from the same run.

Usage: python -m tools.bench [NAME ...]   (names: journal, rpc, paxos, kv, recovery, sharding, resp)
Nothing here asserts: the figures are for people to read and compare.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = {
    "journal": "tools.bench_journal",
    "rpc": "tools.bench_rpc",
    "paxos": "tools.bench_paxos",
    "kv": "tools.bench_kv",
    "recovery": "tools.bench_recovery",
    "sharding": "tools.bench_sharding",
    "resp": "tools.bench_resp",
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        module = importlib.import_module(BENCHES[name])
        module.run()
        print(f"({name} took {time.monotonic() - started:.1f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
