"""Which server leads a group now, as its members say: the nemesis favours leaders as targets.

Each member's ``rsm.status`` has a ``paxos`` map with ``leading`` (it leads now) and
``leader`` (the index, in the group's peers, of the leader it believes in, or None). A
member that claims to lead is the answer; of several claimants (an old leader that has not
yet heard of a newer one), the one most members point at; with no claimant, the member most
point at. None when no member answers in time or none names a leader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

import trio

from diskv_trio.cluster import LocalCluster
from diskv_trio.net import NetError

from ._nemesis_settings import LEADER_ASK_DEADLINE_S


def leader_from_statuses(
    members: Sequence[str], index_of: dict[str, int], statuses: dict[str, dict[str, Any]]
) -> str | None:
    """The leader of a group from its members' statuses (see the module's rules)."""
    by_index = {index_of[name]: name for name in members}
    claimants = [n for n in members if statuses.get(n, {}).get("paxos", {}).get("leading")]
    hints: Counter[str] = Counter()
    for name in members:
        hint = statuses.get(name, {}).get("paxos", {}).get("leader")
        if isinstance(hint, int) and hint in by_index:
            hints[by_index[hint]] += 1
    if claimants:
        return max(claimants, key=lambda name: hints[name])  # first of equals: member order
    return hints.most_common(1)[0][0] if hints else None


async def find_leader(
    cluster: LocalCluster, members: Sequence[str], skip: Collection[str] = ()
) -> str | None:
    """Ask every running member not in `skip` for its status at once; the leader they name."""
    statuses: dict[str, dict[str, Any]] = {}

    async def ask(name: str) -> None:
        with trio.move_on_after(LEADER_ASK_DEADLINE_S):
            try:
                statuses[name] = await cluster.status(name)
            except NetError:
                pass  # a member that does not answer names no leader

    async with trio.open_nursery() as nursery:
        for name in members:
            if name not in skip and cluster.is_running(name):
                nursery.start_soon(ask, name)
    index_of = {name: cluster.spec(name).me for name in members}
    return leader_from_statuses(members, index_of, statuses)
