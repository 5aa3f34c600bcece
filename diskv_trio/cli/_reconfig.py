"""Checks that keep a configuration change from wedging part of the keyspace.

Rules kept here:
- A group is joined only once a majority of the named servers answer as that group: the
  shardmasters move shards to a joined group at once, and shards given to servers that do
  not exist wait for them for ever. `--force` skips the check (servers started later).
- `cluster up` starts the groups it is asked for; when the directory's configuration holds
  other groups, their shards would go unserved, so it refuses and says what to run instead.
- `verdict_on_answers` is pure, so each rule has a table test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import trio

from diskv_trio.cluster import ClusterError, LocalCluster
from diskv_trio.net import NetError, RpcPool

from ._health import shard_ranges

PROBE_DEADLINE_S = 2.0
"""How long a named server gets to say which group it serves."""


def verdict_on_answers(gid: int, answers: Mapping[str, Mapping[str, Any] | str]) -> str | None:
    """Why joining `gid` with these servers would wedge it, or None if it is safe.

    Args:
        answers: server address -> its `rsm.status` reply, or the error text of the call.
    """
    wrong = []
    good = 0
    failures = []
    for address, answer in answers.items():
        if isinstance(answer, str):
            failures.append(f"{address}: {answer}")
        elif answer.get("role") != "shardkv" or answer.get("group") != gid:
            role, group = answer.get("role"), answer.get("group")
            what = "a shardmaster" if role == "shardmaster" else f"group {group}"
            wrong.append(f"{address} is {what}")
        else:
            good += 1
    if wrong:
        return f"not group {gid}: {'; '.join(wrong)}"
    if good * 2 <= len(answers):
        return (
            f"only {good} of {len(answers)} servers answer as group {gid} "
            f"({'; '.join(failures)}); start them first"
        )
    return None


async def probe_group(pool: RpcPool, servers: Sequence[str]) -> dict[str, Mapping[str, Any] | str]:
    """Ask each server for its status at once; a failed call gives its error text."""
    answers: dict[str, Mapping[str, Any] | str] = {}

    async def ask(address: str) -> None:
        try:
            answers[address] = await pool.call(address, "rsm.status", {}, deadline_s=PROBE_DEADLINE_S)
        except NetError as exc:
            answers[address] = str(exc)

    async with trio.open_nursery() as nursery:
        for address in servers:
            nursery.start_soon(ask, address)
    return {address: answers[address] for address in servers}


async def check_recorded_groups(cluster: LocalCluster) -> None:
    """Refuse to run when the directory's configuration holds groups we do not start.

    Raises:
        ClusterError: naming the groups, their shards and the flag that starts them.
    """
    config = await cluster.shardmaster_clerk().query(-1)
    extra = sorted(set(config.groups) - set(cluster.gids))
    if not extra:
        return
    shards = [s for s, g in enumerate(config.shards) if g in extra]
    recorded = sorted(config.groups)
    raise ClusterError(
        f"{cluster.data_dir} was made with groups {','.join(map(str, recorded))}, but only "
        f"{','.join(map(str, cluster.gids)) or 'none'} would start: shards "
        f"{shard_ranges(shards)} would go unserved. Start it with --groups {len(recorded)}"
        f" (and the same --replicas), or use a new --dir"
    )
