"""`diskv cluster up|kill|restart` and `diskv demo`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import trio

from diskv_trio._discovery import DEFAULT_DATA_DIR, default_data_dir
from diskv_trio._private_files import restrict_umask
from diskv_trio.client import DiskvError
from diskv_trio.cluster import ClusterError, LocalCluster, open_local_cluster
from diskv_trio.net import (
    OPERATORS,
    ApplicationError,
    CallContext,
    Handler,
    Identity,
    NetError,
    Role,
    RpcServer,
)

from ._common import (
    EXIT_FAILURE,
    EXIT_OK,
    CommandError,
    add_dir_argument,
    add_logging_arguments,
    configure_logging,
    describe_net_error,
    first_leaf,
    non_negative_int,
    operator_pool,
    positive_int,
    run_until_signalled,
)
from ._reconfig import check_recorded_groups
from ._servers import add_sharding_arguments, sharding_or_exit


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
    add_dir_argument(up, "data directory")
    up.add_argument("--groups", type=positive_int, default=2, help="replica groups (default: 2)")
    up.add_argument("--replicas", type=positive_int, default=3, help="replicas per group (default: 3)")
    up.add_argument("--unreliable", action="store_true", help="start the replicas with fault injection on")
    up.add_argument("--resp", type=non_negative_int, metavar="PORT",
                    help="also serve the Redis protocol on 127.0.0.1:PORT (see `diskv resp`)")
    up.add_argument("--metrics-port", type=positive_int, metavar="BASE",
                    help="serve each server's Prometheus metrics on 127.0.0.1, ports BASE, BASE+1, ... (printed)")
    up.add_argument("--tls", action="store_true",
                    help="TLS on every connection: makes a local CA and certificates in DIR/tls (kept across runs)")
    add_sharding_arguments(up)
    add_logging_arguments(up)
    up.set_defaults(handler=run_cluster_up)

    for name, text in (
        ("restart", "restart a stopped or crashed server of the running local cluster"),
        ("kill", "SIGKILL a server of the running local cluster (for trying out failures)"),
    ):
        cmd = cluster_sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("server", metavar="SERVER", help="server name, e.g. g100-1 or master-0")
        add_dir_argument(cmd)
        if name == "kill":
            cmd.add_argument("--lose-disk", action="store_true", help="also empty its data directory")
        cmd.set_defaults(handler=run_cluster_control, control=name)

    demo = subparsers.add_parser(
        "demo",
        help="start a local cluster, run a workload through a crash, and stop",
        description="Start a local cluster, write and read through the client, kill a replica with "
        "SIGKILL, restart it, show the data intact, and stop everything.",
    )
    add_dir_argument(demo, "data directory")
    demo.add_argument("--keys", type=positive_int, default=200, help="keys to write (default: 200)")
    demo.set_defaults(handler=run_demo)


def _print_layout(cluster: LocalCluster, log_file: Path) -> None:
    print(f"cluster {cluster.cluster!r} in {cluster.data_dir}")
    print(f"  masters: {','.join(cluster.masters)}")
    for gid in cluster.gids:
        print(f"  group {gid}: {','.join(cluster.group_addresses(gid))}")
    print(f"  logs: {cluster.data_dir / 'logs'} (this supervisor's: {log_file.name})")
    if cluster.tls_dir is not None:
        print(f"  tls: {cluster.tls_dir} (give clients elsewhere its ca.pem, with DISKV_TLS_DIR)")
    if cluster.metrics_port_base is not None:
        ports = ", ".join(f"{s.name}={s.metrics_port}" for s in cluster.servers.values())
        print(f"  metrics: http://127.0.0.1:PORT/metrics, {ports}")
    if cluster.data_dir == (Path.cwd() / DEFAULT_DATA_DIR).resolve():
        print("clients started in this directory find it, e.g. `diskv put k v`")
    else:
        print(f"clients find it with --dir {cluster.data_dir} or DISKV_DIR={cluster.data_dir}, e.g. "
              f"`diskv put k v --dir {cluster.data_dir}`")
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
    restrict_umask()
    data_dir = default_data_dir(args.dir)
    # Log records go to a file, so they never interleave with the banner and exit lines.
    log_file = data_dir.resolve() / "logs" / "cluster-up.log"
    configure_logging(args, log_file=log_file)
    server_logging = ["--log-level", "debug" if args.verbose else args.log_level, "--log-format", args.log_format]

    async def body() -> None:
        async with open_local_cluster(
            data_dir,
            groups=args.groups,
            replicas=args.replicas,
            unreliable=args.unreliable,
            server_arguments=server_logging,
            sharding=sharding_or_exit(args),
            metrics_port_base=args.metrics_port,
            tls=args.tls,
        ) as cluster:
            await check_recorded_groups(cluster)
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
                resp_line = None
                if args.resp is not None:
                    from ._resp_cmd import serve_beside_cluster

                    resp_line = await nursery.start(serve_beside_cluster, cluster, args.resp)
                cluster.write_description()
                _print_layout(cluster, log_file)
                if resp_line is not None:
                    print(resp_line, flush=True)
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

    data_dir = default_data_dir(args.dir)
    path = data_dir / CLUSTER_FILE_NAME
    try:
        described = json.loads(path.read_text())
        address = described["supervisor"]
    except (OSError, ValueError, KeyError):
        raise CommandError(f"no running `diskv cluster up` found ({path} names no supervisor)") from None
    if not isinstance(address, str):
        raise CommandError(f"no running `diskv cluster up` found ({path} names no supervisor)")

    async def body() -> dict[str, Any]:
        async with operator_pool(str(described.get("cluster", "diskv")), "cluster-cli", data_dir) as pool:
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
        ok = trio.run(demo, default_data_dir(args.dir), args.keys)
    except ClusterError as exc:
        raise CommandError(str(exc)) from None
    except (DiskvError, NetError) as exc:
        raise CommandError(describe_net_error(exc)) from None
    return EXIT_OK if ok else EXIT_FAILURE
