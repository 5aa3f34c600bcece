"""Minimal-move rebalancing of shards over replica groups.

Rules `rebalance` keeps, for shards ``S`` (a gid per shard) and the live groups ``G``:

1. Every shard ends on a gid in ``G`` (all on 0 when ``G`` is empty).
2. Per-group counts differ by at most one; a group with no shard counts as 0.
3. The number of shards whose owner changes is the least any assignment obeying 1 and 2 can
   have. With ``n`` shards and ``k`` groups every such assignment gives ``n mod k`` groups
   ``n // k + 1`` shards and the rest ``n // k``; a group keeps ``min(count, target)`` of the
   shards it has, so the extra slots go to the groups holding the most shards, and exactly
   the shards above a group's target, plus those on dead gids, move.
4. The result depends only on the inputs' values: ties are broken by gid, never by the order
   of `gids` or by hashing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def rebalance(shards: Sequence[int], gids: Collection[int]) -> tuple[int, ...]:
    """Reassign shards so groups are balanced while as few shards as possible change owner.

    Args:
        shards: the current owner gid of each shard (0 = unassigned).
        gids: the groups that may own shards (positive gids; duplicates are ignored).

    Returns:
        The new owner gid of each shard, same length as `shards`.

    Raises:
        ValueError: a gid in `gids` is 0 or negative.
    """
    groups = sorted(set(gids))
    if not groups:
        return (0,) * len(shards)
    if groups[0] <= 0:
        raise ValueError(f"gids must be positive (0 means unassigned), got {groups[0]}")

    owned: dict[int, list[int]] = {gid: [] for gid in groups}
    orphans: list[int] = []
    for shard, gid in enumerate(shards):
        if gid in owned:
            owned[gid].append(shard)
        else:
            orphans.append(shard)

    base, extra = divmod(len(shards), len(groups))
    # Rule 3: the `extra` larger targets go to the groups holding the most shards.
    by_holding = sorted(groups, key=lambda gid: (-len(owned[gid]), gid))
    target = {gid: base + (1 if rank < extra else 0) for rank, gid in enumerate(by_holding)}

    # Groups above target give up their highest-numbered shards.
    for gid in groups:
        surplus = len(owned[gid]) - target[gid]
        if surplus > 0:
            orphans.extend(owned[gid][-surplus:])
            del owned[gid][-surplus:]
    orphans.sort()

    result = list(shards)
    free = iter(orphans)
    for gid in groups:
        for _ in range(target[gid] - len(owned[gid])):
            result[next(free)] = gid
    assert next(free, None) is None, "every freed shard found a group"
    return tuple(result)


def moved_count(before: Sequence[int], after: Sequence[int]) -> int:
    """Number of shards whose owner differs between two assignments."""
    assert len(before) == len(after)
    return sum(1 for old, new in zip(before, after, strict=True) if old != new)
