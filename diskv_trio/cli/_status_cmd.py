"""`diskv status`: one verdict line for the cluster, then every group and server.

Rules kept here:
- Every server is asked at once with a short deadline, so one dead server costs 2 s, not
  2 s each; the whole command is bounded by `--timeout`.
- The text and `--json` outputs carry the same content (`ClusterHealth`); the exit status
  is the verdict's (0 healthy, 1 degraded, 2 unavailable), so scripts and probes need not
  parse anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

from diskv_trio._discovery import DiscoveryError, find_cluster_name, find_masters, read_cluster_file
from diskv_trio.net import NetError
from diskv_trio.shardmaster import ShardmasterClerk, ShardmasterError

from ._common import (
    CommandError,
    add_dir_argument,
    add_logging_arguments,
    address_list,
    configure_logging,
    operator_pool,
    positive_seconds,
)
from ._health import (
    DEGRADED,
    HEALTHY,
    ClusterHealth,
    GroupHealth,
    ServerHealth,
    assess,
    shard_ranges,
)

STATUS_CALL_DEADLINE_S = 2.0
"""One server's answer; a server slower than this is shown as down."""

CONFIG_QUERY_S = 3.0
"""Asking a majority of shardmasters for the configuration (a few ms when healthy)."""

EXIT_BY_VERDICT = {HEALTHY: 0, DEGRADED: 1}
EXIT_UNAVAILABLE = 2

COLUMNS_HELP = """\
columns:
  state    intact, or recovering (lost its disk: fetching the state from a peer before voting)
  applied  the last Paxos instance applied to this replica's state
  max      the highest Paxos instance this replica has heard of (applied < max: catching up)
  min      instances below this are forgotten everywhere (snapshotted and compacted)
  epoch    raised each time a replica recovers from a lost disk (fences its old promises)
  config   the shard configuration this replica serves
  journal  bytes of journal and snapshots on disk

exit status: 0 healthy, 1 degraded (everything served; something needs a look),
2 unavailable (shards unserved or no shardmaster majority)

examples:
  diskv status
  diskv status --json | jq .verdict
  diskv status --dir /srv/diskv-data
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status",
        help="one verdict for the cluster, then every group and server",
        description="Ask every shardmaster and every replica of every group for its state; print "
        "one verdict (healthy / degraded / unavailable, naming unserved shards), then per group: "
        "replicas up, lag, shards in transfer and whom they wait for, and each server by name.",
        epilog=COLUMNS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--masters", type=address_list, help="shardmaster addresses (default: the local cluster)")
    status.add_argument("--cluster", help="cluster name")
    add_dir_argument(status)
    status.add_argument("--json", action="store_true", help="the same content as JSON")
    status.add_argument("--timeout", type=positive_seconds, default=15.0, help="give up after this many seconds (default: 15)")
    add_logging_arguments(status, default_level="error")
    status.set_defaults(handler=run_status)


async def collect_status(masters: list[str], cluster_name: str, data_dir: Any = None) -> dict[str, Any]:
    """Ask every shardmaster and every replica of every group for its state, all at once."""
    result: dict[str, Any] = {"masters": [], "groups": {}}
    async with operator_pool(cluster_name, "status", data_dir) as pool:

        async def ask(address: str, into: list[dict[str, Any]], index: int) -> None:
            try:
                reply = await pool.call(address, "rsm.status", {}, deadline_s=STATUS_CALL_DEADLINE_S)
            except NetError as exc:
                into[index] = {"address": address, "answers": False, "error": str(exc)}
                return
            into[index] = {"address": address, "answers": True} | reply

        clerk = ShardmasterClerk(masters, pool)
        result["masters"] = [{} for _ in masters]
        async with trio.open_nursery() as nursery:
            for i, address in enumerate(masters):
                nursery.start_soon(ask, address, result["masters"], i)
        if sum(1 for row in result["masters"] if row.get("answers")) * 2 <= len(masters):
            return result  # without a majority a configuration query would only wait
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(CONFIG_QUERY_S):
                config = await clerk.query(-1)
                result["config"] = config.to_wire()
                if config.num > 0:
                    result["previous_config"] = (await clerk.query(config.num - 1)).to_wire()
            for gid, servers in sorted(result.get("config", {}).get("groups", {}).items()):
                rows: list[dict[str, Any]] = [{} for _ in servers]
                result["groups"][str(gid)] = rows
                for i, address in enumerate(servers):
                    nursery.start_soon(ask, address, rows, i)
    return result


def server_names(data_dir: Any = None) -> dict[str, str]:
    """Address -> name (`g100-1`) from the local cluster file, empty if there is none."""
    described = read_cluster_file(data_dir) or {}
    servers = described.get("servers")
    if not isinstance(servers, dict):
        return {}
    return {str(s.get("address")): name for name, s in servers.items() if isinstance(s, dict)}


def _server_line(server: ServerHealth) -> str:
    if not server.answers:
        return f"    {server.name:<10} DOWN  {server.error or ''}".rstrip()
    line = (
        f"    {server.name:<10} up    {'leader' if server.leading else server.state:<10} applied={server.applied} max={server.max} "
        f"min={server.min} epoch={server.epoch}"
        + (f" config={server.config}" if server.config is not None else "")
        + f" journal={server.journal_bytes}B"
    )
    if server.alarm:
        line += f"  DISK FULL ({server.alarm})"
    if not server.serving:
        line += "  not serving yet"
    return line


def _group_lines(title: str, group: GroupHealth) -> list[str]:
    majority = "majority up" if group.majority_up else "NO MAJORITY"
    head = f"{title}: {group.up_count}/{len(group.servers)} up ({majority})"
    if group.gid:
        head += f", shards {shard_ranges(group.shards)}"
    if group.lag_instances:
        head += f", lag {group.lag_instances} instances"
    lines = [head]
    lines += [f"  ! {text}" for text in (*group.problems, *group.flags)]
    lines += [_server_line(s) for s in group.servers]
    return lines


def format_health(health: ClusterHealth) -> str:
    lines = [f"{health.verdict.upper()}: {health.summary}"]
    by_reason: dict[str, list[int]] = {}
    for shard, why in health.unserved.items():
        by_reason.setdefault(why, []).append(shard)
    for why, shards in by_reason.items():
        lines.append(f"  shards {shard_ranges(shards)}: {why}")
    lines += _group_lines("shardmasters", health.masters)
    for group in health.groups:
        lines += _group_lines(f"group {group.gid}", group)
    lines.append("(`diskv status --help` explains the columns)")
    return "\n".join(lines)


def run_status(args: argparse.Namespace) -> int:
    configure_logging(args)
    try:
        masters = find_masters(args.masters, data_dir=args.dir)
    except DiscoveryError as exc:
        raise CommandError(str(exc)) from None
    cluster = args.cluster or find_cluster_name(args.dir)

    async def body() -> dict[str, Any]:
        with trio.fail_after(args.timeout):
            return await collect_status(masters, cluster, args.dir)

    try:
        status = trio.run(body)
    except trio.TooSlowError:
        raise CommandError(f"status did not complete within {args.timeout:g} s") from None
    except (NetError, ShardmasterError) as exc:
        raise CommandError(str(exc)) from None
    health = assess(status, server_names(args.dir))
    if args.json:
        json.dump(health.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(format_health(health))
    return EXIT_BY_VERDICT.get(health.verdict, EXIT_UNAVAILABLE)
