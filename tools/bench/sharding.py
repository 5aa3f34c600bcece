"""How evenly keys spread over 3 replica groups: the default sharding beside the course's.

Figures: for 100,000 keys ``user:N`` and 100,000 random keys, the keys each group holds when
3 groups share the default sharding's shards (assigned as the shardmaster's rebalance does),
and max/min over the groups (the goal: at most 1.2); beside them, the baseline of the same
run: the course's first-character-modulo-10 mapping on the same keys. Pure computation.
"""

from __future__ import annotations

import random
from collections import Counter

from diskv_trio.kvproto import COURSE_SHARDING, DEFAULT_SHARDING, Sharding
from diskv_trio.shardmaster import rebalance

KEY_COUNT = 100_000
GIDS = (100, 101, 102)


def keys_per_group(sharding: Sharding, keys: list[bytes]) -> list[int]:
    """Keys held by each of `GIDS` once they share `sharding`'s shards evenly."""
    owners = rebalance([0] * sharding.count, GIDS)
    counts = Counter(owners[sharding.shard_of(key)] for key in keys)
    return [counts.get(gid, 0) for gid in GIDS]


def _line(name: str, sharding: Sharding, keys: list[bytes]) -> str:
    counts = keys_per_group(sharding, keys)
    ratio = max(counts) / min(counts) if min(counts) else float("inf")
    shown = "inf" if ratio == float("inf") else f"{ratio:.3f}"
    return f"  {name:<12} {str(sharding):<26} keys per group {counts}  max/min {shown}"


def run() -> None:
    rng = random.Random(12)
    key_sets = {
        "user:N": [f"user:{n}".encode() for n in range(KEY_COUNT)],
        "random": [rng.randbytes(rng.randrange(4, 33)) for _ in range(KEY_COUNT)],
    }
    for name, keys in key_sets.items():
        print(_line(name, DEFAULT_SHARDING, keys))
        print(_line(name, COURSE_SHARDING, keys) + "   (baseline: the course's mapping)")


if __name__ == "__main__":
    run()
