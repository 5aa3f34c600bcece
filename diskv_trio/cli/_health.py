"""From what every server says about itself to one verdict on the cluster.

Rules kept here:
- Pure: the status replies and the configurations go in, typed records come out; no I/O, so
  every rule has a table test (`tests/cli/test_health.py`).
- A shard is *unserved* when no group can answer for it now: it belongs to no group, its
  group has no majority up, or its group has not taken it over (in transfer). Any unserved
  shard, or shardmasters without a majority, makes the cluster `unavailable`.
- `degraded` means everything is served but something needs a look: a server down, one
  recovering from a lost disk, a disk-full alarm, or a replica behind its group.
- Servers are named as `diskv cluster kill` names them when the local cluster file is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

HEALTHY = "healthy"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"
VERDICTS = (HEALTHY, DEGRADED, UNAVAILABLE)

LAG_INSTANCES_MAX = 100
"""A replica this many Paxos instances behind the most advanced of its group is reported as
lagging: below it, catching up is a matter of milliseconds."""


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """One server as `diskv status` shows it."""

    name: str
    address: str
    answers: bool
    state: str = "down"  # intact | recovering | down
    serving: bool = False
    applied: int | None = None
    max: int | None = None
    min: int | None = None
    epoch: int | None = None
    journal_bytes: int | None = None
    alarm: str | None = None
    config: int | None = None
    error: str | None = None
    leading: bool = False  # the group's leader: it alone places ops in the log


@dataclass(frozen=True, slots=True)
class GroupHealth:
    """A replica group (gid 0: the shardmasters)."""

    gid: int
    servers: tuple[ServerHealth, ...]
    up_count: int
    majority_up: bool
    lag_instances: int
    shards: tuple[int, ...]
    shards_waiting: dict[int, int] = field(default_factory=dict)
    """Shard -> the group it waits for (to hand it over)."""
    flags: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    verdict: str
    summary: str
    config: int | None
    masters: GroupHealth
    groups: tuple[GroupHealth, ...]
    unserved: dict[int, str]
    """Shard -> why no group serves it now."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["unserved"] = {str(k): v for k, v in self.unserved.items()}
        for group in data["groups"]:
            group["shards_waiting"] = {str(k): v for k, v in group["shards_waiting"].items()}
        data["masters"]["shards_waiting"] = {}
        return data


def shard_ranges(shards: Iterable[int]) -> str:
    """`0-3,7,9-11`: shard lists stay short with many shards."""
    ordered = sorted(shards)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts) or "none"


def server_health(row: Mapping[str, Any], names: Mapping[str, str]) -> ServerHealth:
    """One `rsm.status` reply (or a failed call: `answers` False) as a record."""
    address = str(row.get("address"))
    name = names.get(address, address)
    if not row.get("answers"):
        return ServerHealth(name, address, False, error=row.get("error"))
    machine = row.get("machine")
    machine = machine if isinstance(machine, dict) else {}
    paxos = row.get("paxos")
    paxos = paxos if isinstance(paxos, dict) else {}
    return ServerHealth(
        name=name,
        address=address,
        answers=True,
        state=str(row.get("state", "intact")),
        serving=bool(row.get("serving")),
        applied=row.get("applied"),
        max=row.get("max"),
        min=row.get("min"),
        epoch=paxos.get("epoch"),
        journal_bytes=row.get("journal_bytes"),
        alarm=row.get("alarm"),
        config=machine.get("config"),
        leading=paxos.get("leading") is True,
    )


def _flags(servers: Sequence[ServerHealth]) -> tuple[list[str], int]:
    up = [s for s in servers if s.answers]
    flags = [f"{s.name} down" for s in servers if not s.answers]
    flags += [f"{s.name} recovering" for s in up if s.state == "recovering"]
    flags += [f"{s.name} disk full (alarm {s.alarm})" for s in up if s.alarm]
    applied = [s.applied for s in up if s.applied is not None]
    lag = max(applied) - min(applied) if applied else 0
    if lag >= LAG_INSTANCES_MAX:
        flags += [f"{s.name} {max(applied) - s.applied} instances behind" for s in up
                  if s.applied is not None and max(applied) - s.applied >= LAG_INSTANCES_MAX]
    return flags, lag


def _group(gid: int, rows: Sequence[Mapping[str, Any]], names: Mapping[str, str],
           shards: tuple[int, ...], waiting_for: dict[int, int]) -> GroupHealth:
    servers = tuple(server_health(r, names) for r in rows)
    up_count = sum(1 for s in servers if s.answers)
    flags, lag = _flags(servers)
    return GroupHealth(gid, servers, up_count, up_count * 2 > len(servers), lag, shards,
                       waiting_for, tuple(flags))


def _waiting(rows: Sequence[Mapping[str, Any]], owned: tuple[int, ...], latest: int) -> tuple[set[int], int | None]:
    """Shards of `owned` the group does not hold yet, per its most advanced replica."""
    described = [r["machine"] for r in rows if r.get("answers") and isinstance(r.get("machine"), dict)]
    if not described:
        return set(), None
    best = max(described, key=lambda m: int(m.get("config", 0)))
    config = int(best.get("config", 0))
    present = set(best.get("present", ()))
    if config < latest:
        return {s for s in owned if s not in present}, config
    return set(best.get("waiting", ())), config


def assess(status: Mapping[str, Any], names: Mapping[str, str] | None = None) -> ClusterHealth:
    """The verdict on `status` as gathered by `collect_status`.

    `status` holds `masters` (status rows), `groups` (gid -> rows), and, when a shardmaster
    answered, `config` and `previous_config` (wire form: `num`, `shards`, `groups`).
    """
    names = names or {}
    masters = _group(0, status.get("masters", ()), names, (), {})
    config = status.get("config")
    unserved: dict[int, str] = {}
    groups: list[GroupHealth] = []
    problems: list[str] = []
    if not masters.majority_up:
        problems.append(f"shardmasters: {masters.up_count} of {len(masters.servers)} answer")
    if config is None:
        return ClusterHealth(UNAVAILABLE, "; ".join(problems) or "no shardmaster answered",
                             None, masters, (), {})
    latest = int(config["num"])
    owners = [int(g) for g in config["shards"]]
    previous = status.get("previous_config") or {}
    previous_owners = [int(g) for g in previous.get("shards", owners)]
    for shard, gid in enumerate(owners):
        if gid == 0:
            unserved[shard] = "no group has joined"
    rows_by_gid = {int(g): rows for g, rows in status.get("groups", {}).items()}
    for gid in sorted(rows_by_gid):
        owned = tuple(s for s, g in enumerate(owners) if g == gid)
        rows = rows_by_gid[gid]
        waiting, _ = _waiting(rows, owned, latest)
        waiting_for = {s: previous_owners[s] for s in sorted(waiting)}
        group = _group(gid, rows, names, owned, waiting_for)
        reasons: list[str] = []
        if not group.majority_up:
            reasons.append(f"group {gid} has {group.up_count} of {len(group.servers)} replicas up")
            for shard in owned:
                unserved.setdefault(shard, reasons[-1])
        for shard, source in waiting_for.items():
            text = f"waits for group {source} to hand it over" if source not in (0, gid) else "in transfer"
            unserved.setdefault(shard, f"group {gid} {text}")
        if waiting_for:
            sources = sorted(set(waiting_for.values()))
            reasons.append(
                f"{len(waiting_for)} shard(s) wait for group(s) {','.join(map(str, sources))} to hand them over"
            )
        groups.append(replace(group, problems=tuple(reasons)))
    flagged = [f for g in (masters, *groups) for f in g.flags]
    if unserved or problems:
        verdict = UNAVAILABLE
        summary = "; ".join(problems + ([f"{len(unserved)} of {len(owners)} shards unserved"] if unserved else []))
    elif flagged:
        verdict = DEGRADED
        summary = "every shard is served; " + ", ".join(flagged)
    else:
        verdict = HEALTHY
        summary = f"every shard is served, every server answers (configuration {latest})"
    return ClusterHealth(verdict, summary, latest, masters, tuple(groups), dict(sorted(unserved.items())))
