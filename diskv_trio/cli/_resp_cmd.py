"""`diskv resp`: the Redis-protocol gateway in front of a cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

import trio

from diskv_trio._discovery import DiscoveryError, find_cluster_name, find_masters
from diskv_trio.client import connect
from diskv_trio.cluster import LocalCluster
from diskv_trio.net import Credentials, TcpAddress, parse_address
from diskv_trio.resp import RespGateway
from diskv_trio.resp._password import PasswordError, client_key_password, read_password_file

from ._common import (
    EXIT_OK,
    CommandError,
    add_dir_argument,
    add_logging_arguments,
    address_list,
    configure_logging,
    credentials_or_exit,
    first_leaf,
    run_until_signalled,
)

DEFAULT_LISTEN = "127.0.0.1:6379"

EXAMPLES = """\
examples:
  diskv resp                                  listen on 127.0.0.1:6379 for the local cluster
  redis-cli -a "$(cat diskv-data/credentials/client.key)" set greeting hello
  diskv resp --listen 0.0.0.0:6380 --password-file /etc/diskv/resp.password
"""


def tcp_listen_address(text: str) -> TcpAddress:
    """argparse type for HOST:PORT (port 0: any free port)."""
    try:
        address = parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(address, TcpAddress):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return address


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser(
        "resp",
        help="serve the Redis protocol (RESP) in front of the cluster",
        description="Serve RESP2/RESP3 on HOST:PORT, turning GET, SET, APPEND, DEL, EXISTS, MGET "
        "and STRLEN into calls on the cluster, so redis-cli, redis-py and other Redis clients work. "
        "AUTH takes the hex client key unless --password-file names another password.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--listen", type=tcp_listen_address, default=tcp_listen_address(DEFAULT_LISTEN),
                     metavar="HOST:PORT", help=f"where to listen (default: {DEFAULT_LISTEN})")
    cmd.add_argument("--masters", type=address_list,
                     help="shardmaster addresses (default: $DISKV_MASTERS, else the local cluster of --dir)")
    cmd.add_argument("--cluster", help="cluster name (default: the local cluster's, else 'diskv')")
    add_dir_argument(cmd)
    auth = cmd.add_mutually_exclusive_group()
    auth.add_argument("--password-file", type=Path,
                      help="AUTH takes the first line of this file (mode 600) instead of the hex client key")
    auth.add_argument("--no-auth", action="store_true",
                      help="serve without AUTH (only where every local user may use the store)")
    add_logging_arguments(cmd)
    cmd.set_defaults(handler=run_resp)


def gateway_password(credentials: Credentials | None, password_file: Path | None, no_auth: bool) -> bytes | None:
    """The password AUTH must present, from the flags, or a one-line error."""
    if no_auth:
        return None
    try:
        return read_password_file(password_file) if password_file else client_key_password(credentials)
    except PasswordError as exc:
        raise CommandError(str(exc)) from None


def run_resp(args: argparse.Namespace) -> int:
    configure_logging(args)
    try:
        masters = find_masters(args.masters, data_dir=args.dir)
    except DiscoveryError as exc:
        raise CommandError(str(exc)) from None
    cluster = args.cluster or find_cluster_name(args.dir)
    credentials = credentials_or_exit(args.dir)
    password = gateway_password(credentials, args.password_file, args.no_auth)
    listen: TcpAddress = args.listen

    async def body() -> None:
        async with connect(masters, cluster=cluster, credentials=credentials) as kv:
            gateway = RespGateway(kv, password=password, version=_version())
            async with trio.open_nursery() as nursery:
                port = await nursery.start(gateway.serve, listen.host, listen.port)
                print(f"RESP gateway on {listen.host}:{port} for cluster {cluster!r}"
                      f"{' (no AUTH)' if password is None else ''}; Ctrl-C stops it", flush=True)

    try:
        trio.run(run_until_signalled, body)
    except BaseException as raised:  # noqa: BLE001 - a listen failure becomes one line
        leaf = first_leaf(raised)
        if isinstance(leaf, OSError):
            raise CommandError(f"cannot listen on {listen}: {leaf.strerror or leaf}") from None
        raise
    return EXIT_OK


def _version() -> str:
    from ._main import package_version

    return package_version()



async def serve_beside_cluster(
    cluster: LocalCluster, port: int, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """`cluster up --resp PORT`: a gateway on 127.0.0.1:`port` in front of `cluster`, AUTH with
    its hex client key; `task_status.started` gets a banner line saying how to reach it."""
    password = gateway_password(cluster.credentials, None, False)
    async with connect(cluster.masters, cluster=cluster.cluster, credentials=cluster.credentials) as kv:
        gateway = RespGateway(kv, password=password, version=_version())
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(gateway.serve, "127.0.0.1", port)
            key_file = cluster.credentials_dir / "client.key"
            task_status.started(
                f"  RESP: 127.0.0.1:{bound} (AUTH with the client key: "
                f"redis-cli -p {bound} -a \"$(cat {key_file})\")"
            )
