"""`diskv cluster up`, `diskv demo` and `diskv status`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import trio

from diskv_trio._discovery import DEFAULT_DATA_DIR, DiscoveryError, find_cluster_name, find_masters
from diskv_trio._private_files import restrict_umask
from diskv_trio.cluster import ClusterError, LocalCluster, open_local_cluster
from diskv_trio.net import (
    OPERATORS,
    ApplicationError,
    CallContext,
    Handler,
    Identity,
    Role,
    RpcServer,
)

from ._common import (
    EXIT_FAILURE,
    EXIT_OK,
    CommandError,
    address_list,
    configure_logging,
    first_leaf,
    operator_pool,
    positive_int,
    run_until_signalled,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    cluster = subparsers.add_parser(
        "cluster", help="run a local cluster", description="Run shardmasters and replica groups on this machine."
    )
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    up = cluster_sub.add_parser(
        "up",
        help="start a local cluster and supervise it until Ctrl-C",
        description="Start 3 shardmasters and GROUPS groups of REPLICAS replicas as separate processes, "
        "join the groups, print where everything is, and stop everything on Ctrl-C.",
    )
    up.add_argument("--dir", type=Path, default=DEFAULT_DATA_DIR, help="data directory (default: ./diskv-data)")
    up.add_argument("--groups", type=positive_int, default=2, help="replica groups (default: 2)")
    up.add_argument("--replicas", type=positive_int, default=3, help="replicas per group (default: 3)")
    up.add_argument("--unreliable", action="store_true", help="start the replicas with fault injection on")
    up.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    up.set_defaults(handler=run_cluster_up)

    for name, text in (
        ("restart", "restart a stopped or crashed server of the running local cluster"),
        ("kill", "SIGKILL a server of the running local cluster (for trying out failures)"),
    ):
        cmd = cluster_sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("server", metavar="SERVER", help="server name, e.g. g100-1 or master-0")
        cmd.add_argument("--dir", type=Path, default=DEFAULT_DATA_DIR, help="data directory (default: ./diskv-data)")
        if name == "kill":
            cmd.add_argument("--lose-disk", action="store_true", help="also empty its data directory")
        cmd.set_defaults(handler=run_cluster_control, control=name)

    demo = subparsers.add_parser(
        "demo",
        help="start a local cluster, run a workload through a crash, and stop",
        description="Start a local cluster, write and read through the client, kill a replica with "
        "SIGKILL, restart it, show the data intact, and stop everything.",
    )
    demo.add_argument("--dir", type=Path, default=DEFAULT_DATA_DIR, help="data directory (default: ./diskv-data)")
    demo.add_argument("--keys", type=positive_int, default=200, help="keys to write (default: 200)")
    demo.set_defaults(handler=run_demo)

    status = subparsers.add_parser(
        "status",
        help="show every server's state",
        description="For the shardmasters and every group: address, whether it answers, Paxos "
        "max / min / applied instance, epoch, state and journal size.",
    )
    status.add_argument("--masters", type=address_list, help="shardmaster addresses (default: the local cluster)")
    status.add_argument("--cluster", help="cluster name")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)


def _print_layout(cluster: LocalCluster) -> None:
    print(f"cluster {cluster.cluster!r} in {cluster.data_dir}")
    print(f"  masters: {','.join(cluster.masters)}")
    for gid in cluster.gids:
        print(f"  group {gid}: {','.join(cluster.group_addresses(gid))}")
    print(f"  logs: {cluster.data_dir / 'logs'}")
    print("clients in this directory find it automatically, e.g. `diskv put k v`")
    print("`diskv cluster kill g100-1` / `diskv cluster restart g100-1` try out failures; Ctrl-C stops everything")
    sys.stdout.flush()


SUPERVISOR_SOCKET_NAME = "supervisor.sock"
WATCH_S = 1.0
"""How often `cluster up` looks for servers that exited on their own."""


def _control_handlers(cluster: LocalCluster) -> dict[str, Handler]:
    """Served to operators only: the supervisor can kill servers and empty their disks."""

    async def restart(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        name = str(args.get("server"))
        try:
            if cluster.is_running(name):
                raise ApplicationError("ErrRunning", f"{name} is already running")
            await cluster.restart(name)
        except ClusterError as exc:
            raise ApplicationError("ErrCluster", str(exc)) from None
        cluster.write_description()
        return {"server": name, "pid": cluster.describe()["servers"][name]["pid"]}

    async def kill(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        name = str(args.get("server"))
        try:
            await cluster.kill(name, lose_disk=bool(args.get("lose_disk")))
        except ClusterError as exc:
            raise ApplicationError("ErrCluster", str(exc)) from None
        cluster.write_description()
        return {"server": name}

    return {"cluster.restart": restart, "cluster.kill": kill}


async def _watch_exits(cluster: LocalCluster) -> None:
    reported: set[tuple[str, int]] = set()
    while True:
        await trio.sleep(WATCH_S)
        for spec in cluster.servers.values():
            process = spec.process
            if process is None or process.returncode is None:
                continue
            key = (spec.name, process.pid)
            if key not in reported:
                reported.add(key)
                print(
                    f"{spec.name} exited (status {process.returncode}); see {spec.log_path}; "
                    f"`diskv cluster restart {spec.name}` starts it again",
                    flush=True,
                )


def run_cluster_up(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    restrict_umask()

    async def body() -> None:
        async with open_local_cluster(
            args.dir, groups=args.groups, replicas=args.replicas, unreliable=args.unreliable
        ) as cluster:
            for gid in cluster.gids:
                await cluster.join(gid)
            control = RpcServer(
                f"unix:{cluster.socket_dir / SUPERVISOR_SOCKET_NAME}",
                Identity(cluster.cluster, Role.OPERATOR, "supervisor"),
                _control_handlers(cluster),
                roles=OPERATORS,
                credentials=cluster.credentials,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(control.serve)
                cluster.supervisor_address = control.address
                cluster.write_description()
                _print_layout(cluster)
                nursery.start_soon(_watch_exits, cluster)

    try:
        trio.run(run_until_signalled, body)
    except BaseException as raised:  # noqa: BLE001 - a cluster failure becomes one line
        exc = first_leaf(raised)
        if isinstance(exc, ClusterError):
            raise CommandError(str(exc)) from None
        raise
    return EXIT_OK


def run_cluster_control(args: argparse.Namespace) -> int:
    """`diskv cluster restart|kill SERVER`: ask the running `cluster up` to do it."""
    from diskv_trio._discovery import CLUSTER_FILE_NAME
    from diskv_trio.net import NetError, RpcRemoteError, RpcUnavailable

    path = args.dir / CLUSTER_FILE_NAME
    try:
        described = json.loads(path.read_text())
        address = described["supervisor"]
    except (OSError, ValueError, KeyError):
        raise CommandError(f"no running `diskv cluster up` found ({path} names no supervisor)") from None
    if not isinstance(address, str):
        raise CommandError(f"no running `diskv cluster up` found ({path} names no supervisor)")

    async def body() -> dict[str, Any]:
        async with operator_pool(str(described.get("cluster", "diskv")), "cluster-cli", args.dir) as pool:
            request = {"server": args.server, "lose_disk": getattr(args, "lose_disk", False)}
            return await pool.call(address, f"cluster.{args.control}", request, deadline_s=60)

    try:
        reply = trio.run(body)
    except RpcUnavailable:
        raise CommandError("the local cluster's supervisor does not answer; is `diskv cluster up` running?") from None
    except RpcRemoteError as exc:
        raise CommandError(exc.message) from None
    except NetError as exc:
        raise CommandError(f"the local cluster's supervisor refused us: {exc}") from None
    if args.control == "restart":
        print(f"{args.server} restarted (pid {reply.get('pid')})")
    else:
        print(f"{args.server} killed")
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    from ._demo import demo

    restrict_umask()
    try:
        ok = trio.run(demo, args.dir, args.keys)
    except ClusterError as exc:
        raise CommandError(str(exc)) from None
    return EXIT_OK if ok else EXIT_FAILURE


async def collect_status(masters: list[str], cluster_name: str) -> dict[str, Any]:
    """Ask every shardmaster and every replica of every group for its state."""
    from diskv_trio.net import NetError
    from diskv_trio.shardmaster import ShardmasterClerk

    result: dict[str, Any] = {"masters": [], "groups": {}}
    async with operator_pool(cluster_name, "status") as pool:

        async def ask(address: str) -> dict[str, Any]:
            try:
                reply = await pool.call(address, "rsm.status", {}, deadline_s=2.0)
            except NetError as exc:
                return {"address": address, "answers": False, "error": str(exc)}
            return {"address": address, "answers": True} | reply

        for address in masters:
            result["masters"].append(await ask(address))
        config = None
        with trio.move_on_after(5):
            config = await ShardmasterClerk(masters, pool).query(-1)
        if config is not None:
            result["config"] = config.to_wire()
            for gid, servers in sorted(config.groups.items()):
                result["groups"][str(gid)] = [await ask(a) for a in servers]
    return result


def _format_row(row: dict[str, Any]) -> str:
    if not row.get("answers"):
        return f"    {row['address']}  DOWN"
    paxos = row.get("paxos", {})
    return (
        f"    {row['address']}  up  {row.get('state', '?'):10} max={row.get('max')} "
        f"min={row.get('min')} applied={row.get('applied')} epoch={paxos.get('epoch', '?')} "
        f"journal={row.get('journal_bytes', '?')}B"
        + (f"  ALARM {row['alarm']}" if row.get("alarm") else "")
    )


def run_status(args: argparse.Namespace) -> int:
    try:
        masters = find_masters(args.masters)
    except DiscoveryError as exc:
        raise CommandError(str(exc)) from None
    status = trio.run(collect_status, masters, args.cluster or find_cluster_name())
    if args.json:
        json.dump(status, sys.stdout, indent=2, default=str)
        print()
    else:
        print("shardmasters:")
        for row in status["masters"]:
            print(_format_row(row))
        if "config" not in status:
            print("configuration: no shardmaster answered")
        for gid, rows in status["groups"].items():
            print(f"group {gid}:")
            for row in rows:
                print(_format_row(row))
    down = [r for r in status["masters"] if not r["answers"]]
    down += [r for rows in status["groups"].values() for r in rows if not r["answers"]]
    return EXIT_OK if not down else EXIT_FAILURE
