"""`nox -s bench`: every benchmark, each printing its figures beside a baseline from the same run.

Usage: python -m tools.bench [--seconds S] [NAME ...]
  (names: journal, rpc, paxos, pysyncobj, kv, kvprofile, recovery, sharding, resp)
--seconds S sets the length of each load phase of pysyncobj, kv and kvprofile (a quick look).
Nothing here asserts: the figures are for people to read and compare.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from ._options import SECONDS_ENV

BENCHES = {
    "journal": "tools.bench.journal",
    "rpc": "tools.bench.rpc",
    "paxos": "tools.bench.paxos",
    "pysyncobj": "tools.bench.pysyncobj",
    "kv": "tools.bench.kv",
    "kvprofile": "tools.bench.kvprofile",
    "recovery": "tools.bench.recovery",
    "sharding": "tools.bench.sharding",
    "resp": "tools.bench.resp",
}


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:])
    if {"-h", "--help"} & set(names):
        print(__doc__)
        return 0
    if "--seconds" in names:
        at = names.index("--seconds")
        seconds = names[at + 1 : at + 2]
        if not seconds or not _positive(seconds[0]):
            print("bench: --seconds needs a positive number", file=sys.stderr)
            return 2
        os.environ[SECONDS_ENV] = seconds[0]
        del names[at : at + 2]
    names = names or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(
            f"bench: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHES)}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        module = importlib.import_module(BENCHES[name])
        module.run()
        print(f"({name} took {time.monotonic() - started:.1f} s)\n", flush=True)
    return 0


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
