"""`diskv get|put|append|delete|cas` and `diskv admin join|leave|move|query`.

The key/value bodies (bytes, stdin, exit status 3) are in `_kv_values`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

import trio

from diskv_trio._discovery import DiscoveryError, find_cluster_name, find_masters
from diskv_trio.client import DiskvError, connect
from diskv_trio.net import NetError
from diskv_trio.shardmaster import Config, ShardmasterClerk, ShardmasterError

from ._common import (
    EXIT_OK,
    CommandError,
    add_dir_argument,
    add_logging_arguments,
    address_list,
    configure_logging,
    credentials_or_exit,
    describe_net_error,
    non_negative_int,
    operator_pool,
    positive_int,
    positive_seconds,
)
from ._kv_values import EXIT_NOT_HELD, add_kv_commands, parse_values, run_kv_op
from ._reconfig import probe_group, verdict_on_answers
from ._waiting import EXPLAIN_AFTER_S, diagnose, explained_wait

DEFAULT_TIMEOUT_S = 30.0

GET_EXAMPLES = """\
examples:
  diskv get greeting
  diskv get greeting --json          {"key": "greeting", "value": "hello"}
  diskv get greeting --dir /srv/diskv-data --timeout 5
"""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--masters",
        type=address_list,
        help="shardmaster addresses (default: $DISKV_MASTERS, else the local cluster of --dir)",
    )
    parser.add_argument("--cluster", help="cluster name (default: the local cluster's, else 'diskv')")
    add_dir_argument(parser)
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"give up after this many seconds (default: {DEFAULT_TIMEOUT_S:g}); after "
        f"{EXPLAIN_AFTER_S:g} s the command says on stderr what it waits for",
    )
    add_logging_arguments(parser, default_level="error")


def register(subparsers: argparse._SubParsersAction) -> None:
    get = subparsers.add_parser(
        "get",
        help="print the value of a key",
        description="Print the value of KEY.",
        epilog=GET_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    get.add_argument("key")
    get.add_argument("--json", action="store_true", help='print {"key": ..., "value": ...}')
    add_connection_arguments(get)
    get.set_defaults(handler=run_kv, op="get")
    for name, text in (("put", "set KEY to VALUE"), ("append", "append VALUE to KEY")):
        cmd = subparsers.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("key")
        cmd.add_argument("value", help="the value, or - to read it from stdin")
        add_connection_arguments(cmd)
        cmd.set_defaults(handler=run_kv, op=name)
    add_kv_commands(subparsers, add_connection_arguments, run_kv)

    admin = subparsers.add_parser(
        "admin", help="change or show the shard configuration", description="Configuration changes through the shardmasters."
    )
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    join = admin_sub.add_parser("join", help="add replica group G with its servers", description="Add replica group G.")
    join.add_argument("gid", type=positive_int, metavar="G")
    join.add_argument("servers", type=address_list, metavar="A0,A1,A2")
    join.add_argument(
        "--force", action="store_true", help="join even if the servers do not answer as group G (yet)"
    )
    leave = admin_sub.add_parser("leave", help="remove replica group G", description="Remove replica group G.")
    leave.add_argument("gid", type=positive_int, metavar="G")
    move = admin_sub.add_parser("move", help="assign SHARD to group G", description="Assign SHARD to group G.")
    move.add_argument("shard", type=non_negative_int, metavar="SHARD")
    move.add_argument("gid", type=positive_int, metavar="G")
    query = admin_sub.add_parser("query", help="show a configuration", description="Show configuration NUM (default: latest).")
    query.add_argument("num", type=int, nargs="?", default=-1, metavar="NUM")
    query.add_argument("--json", action="store_true", help="machine-readable output")
    for cmd in (join, leave, move, query):
        add_connection_arguments(cmd)
        cmd.set_defaults(handler=run_admin)


def _masters_and_cluster(args: argparse.Namespace) -> tuple[list[str], str]:
    configure_logging(args)
    try:
        masters = find_masters(args.masters, data_dir=args.dir)
    except DiscoveryError as exc:
        raise CommandError(str(exc)) from None
    return masters, args.cluster or find_cluster_name(args.dir)


def _explainer(
    args: argparse.Namespace, masters: list[str], cluster: str, key: str | None = None
) -> Callable[[], Awaitable[str | None]]:
    return lambda: diagnose(masters, cluster, args.dir, key)


def run_kv(args: argparse.Namespace) -> int:
    masters, cluster = _masters_and_cluster(args)
    expected, value = parse_values(args)
    not_held: list[str] = []

    async def body() -> None:
        async with connect(masters, cluster=cluster, credentials=credentials_or_exit(args.dir)) as kv:
            explain = _explainer(args, masters, cluster, args.key)
            async with explained_wait(args.op, args.timeout, explain, lambda: kv.last_wait):
                line = await run_kv_op(kv, args, expected, value)
                if line is not None:
                    not_held.append(line)

    try:
        trio.run(body)
    except trio.TooSlowError:
        raise CommandError(f"{args.op} did not complete within {args.timeout:g} s") from None
    except (DiskvError, NetError) as exc:
        raise CommandError(describe_net_error(exc)) from None
    if not_held:
        raise CommandError(not_held[0], EXIT_NOT_HELD)
    return EXIT_OK


def format_config(config: Config) -> str:
    lines = [f"config {config.num} ({config.sharding})"]
    for start in range(0, len(config.shards), 20):
        lines.append("shard  " + " ".join(f"{s:>4}" for s in range(start, min(start + 20, len(config.shards)))))
        lines.append("group  " + " ".join(f"{g:>4}" for g in config.shards[start : start + 20]))
    if config.groups:
        lines.append("groups:")
        for gid in sorted(config.groups):
            owned = sum(1 for g in config.shards if g == gid)
            lines.append(f"  {gid:>5}  {owned} shard(s)  {','.join(config.groups[gid])}")
    else:
        lines.append("groups: none")
    return "\n".join(lines)


def run_admin(args: argparse.Namespace) -> int:
    masters, cluster = _masters_and_cluster(args)

    async def body() -> None:
        async with operator_pool(cluster, "admin-cli", args.dir) as pool:
            explain = _explainer(args, masters, cluster)
            async with explained_wait(f"admin {args.admin_command}", args.timeout, explain):
                clerk = ShardmasterClerk(masters, pool)
                command = args.admin_command
                if command == "join":
                    if not args.force:
                        refused = verdict_on_answers(args.gid, await probe_group(pool, args.servers))
                        if refused:
                            raise CommandError(
                                f"admin join {args.gid} refused: {refused} "
                                "(--force joins anyway; its shards wait until the servers answer)"
                            )
                    await clerk.join(args.gid, args.servers)
                elif command == "leave":
                    await clerk.leave(args.gid)
                elif command == "move":
                    await clerk.move(args.shard, args.gid)
                else:
                    config = await clerk.query(args.num)
                    if args.json:
                        json.dump(config.to_wire(), sys.stdout)
                        print()
                    else:
                        print(format_config(config))

    try:
        trio.run(body)
    except trio.TooSlowError:
        raise CommandError(f"admin {args.admin_command} did not complete within {args.timeout:g} s") from None
    except (ShardmasterError, NetError) as exc:
        raise CommandError(describe_net_error(exc)) from None
    return EXIT_OK
