"""`diskv get|put|append` and `diskv admin join|leave|move|query`."""

from __future__ import annotations

import argparse
import json
import sys

import trio

from diskv_trio._discovery import DiscoveryError, find_cluster_name, find_masters
from diskv_trio.client import DiskvError, connect
from diskv_trio.net import NetError
from diskv_trio.shardmaster import SHARD_COUNT, Config, ShardmasterClerk, ShardmasterError

from ._common import (
    EXIT_OK,
    CommandError,
    address_list,
    credentials_or_exit,
    describe_net_error,
    non_negative_int,
    operator_pool,
    positive_int,
)

DEFAULT_TIMEOUT_S = 30.0


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--masters",
        type=address_list,
        help="shardmaster addresses (default: $DISKV_MASTERS, else the local cluster in ./diskv-data)",
    )
    parser.add_argument("--cluster", help="cluster name (default: the local cluster's, else 'diskv')")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="give up after this many seconds"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    get = subparsers.add_parser("get", help="print the value of a key", description="Print the value of KEY.")
    get.add_argument("key")
    add_connection_arguments(get)
    get.set_defaults(handler=run_kv, op="get")
    for name, text in (("put", "set KEY to VALUE"), ("append", "append VALUE to KEY")):
        cmd = subparsers.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("key")
        cmd.add_argument("value")
        add_connection_arguments(cmd)
        cmd.set_defaults(handler=run_kv, op=name)

    admin = subparsers.add_parser(
        "admin", help="change or show the shard configuration", description="Configuration changes through the shardmasters."
    )
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    join = admin_sub.add_parser("join", help="add replica group G with its servers", description="Add replica group G.")
    join.add_argument("gid", type=positive_int, metavar="G")
    join.add_argument("servers", type=address_list, metavar="A0,A1,A2")
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
    try:
        masters = find_masters(args.masters)
    except DiscoveryError as exc:
        raise CommandError(str(exc)) from None
    return masters, args.cluster or find_cluster_name()


def run_kv(args: argparse.Namespace) -> int:
    masters, cluster = _masters_and_cluster(args)

    async def body() -> None:
        with trio.fail_after(args.timeout):
            async with connect(masters, cluster=cluster, credentials=credentials_or_exit()) as kv:
                if args.op == "get":
                    print(await kv.get(args.key))
                elif args.op == "put":
                    await kv.put(args.key, args.value)
                else:
                    await kv.append(args.key, args.value)

    try:
        trio.run(body)
    except trio.TooSlowError:
        raise CommandError(f"{args.op} did not complete within {args.timeout:g} s") from None
    except (DiskvError, NetError) as exc:
        raise CommandError(describe_net_error(exc)) from None
    return EXIT_OK


def format_config(config: Config) -> str:
    lines = [f"config {config.num}"]
    lines.append("shard  " + " ".join(f"{s:>4}" for s in range(SHARD_COUNT)))
    lines.append("group  " + " ".join(f"{g:>4}" for g in config.shards))
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
        with trio.fail_after(args.timeout):
            async with operator_pool(cluster, "admin-cli") as pool:
                clerk = ShardmasterClerk(masters, pool)
                command = args.admin_command
                if command == "join":
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
