"""`diskv shardmaster` and `diskv serve`: run one server process until SIGTERM / Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from dataclasses import replace
from pathlib import Path

import trio

from diskv_trio import _metrics
from diskv_trio._dirlock import DirectoryInUseError
from diskv_trio._discovery import DEFAULT_CLUSTER_NAME
from diskv_trio._private_files import restrict_umask
from diskv_trio._profiling import profiling_on_signals
from diskv_trio.kvproto import DEFAULT_SHARDING, SCHEMES, Sharding
from diskv_trio.net import (
    CREDENTIALS_ENV,
    TLS_DIR_ENV,
    Credentials,
    CredentialsError,
    Role,
    load_credentials,
    load_tls,
)
from diskv_trio.rsm import IdentityMismatchError, NodeSettings, ReplicaNode

from ._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_logging_arguments,
    address_list,
    configure_logging,
    first_leaf,
    non_negative_int,
    positive_int,
    run_until_signalled,
)

log = logging.getLogger("diskv.server")


def add_common_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--me", type=non_negative_int, required=True, help="this server's index in --peers")
    parser.add_argument("--peers", type=address_list, required=True, help="addresses of the group's replicas, A0,A1,A2")
    parser.add_argument("--dir", type=Path, required=True, help="this server's private data directory")
    parser.add_argument(
        "--bootstrap",
        action="store_true",
        help="first start of a brand-new replica; without it an empty --dir means a lost disk",
    )
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER_NAME, help="cluster name checked in every connection")
    parser.add_argument(
        "--credentials",
        type=Path,
        help=f"directory holding peer.key, operator.key and client.key (or set {CREDENTIALS_ENV});"
        " `diskv cluster up` makes one",
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help=f"serve and call over TLS with ca.pem, cert.pem and key.pem of this directory (or set"
        f" {TLS_DIR_ENV}); `diskv cluster up --tls` makes one per server",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="run without credentials: anyone who can connect may act as a peer or operator",
    )
    parser.add_argument("--unreliable", action="store_true", help="fault injection: drop requests and replies")
    parser.add_argument(
        "--read-lease-ms", type=_lease_ms, metavar="MS",
        help="experimental: let the leader answer reads without a heartbeat round for MS ms after a majority"
        " acknowledged one (1-250; off by default: it trusts clocks to drift less than 10 ms per lease, and"
        " recovery from a lost disk may stall while leases are on; every server of a group needs the same"
        " setting)",
    )
    parser.add_argument(
        "--metrics-port", type=non_negative_int, metavar="PORT",
        help="serve Prometheus metrics over HTTP on this port (0: any free port; the log says which)",
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address the metrics listen on (default: 127.0.0.1)")
    add_logging_arguments(parser)
    parser.add_argument(
        "--log-file", type=Path, help="log here instead of stderr, rotated past 16 MiB (3 old files kept)"
    )


LEASE_MS_MAX = 250
"""Read leases stay below the 300 ms minimum election timeout (DESIGN.md, leases)."""


def add_sharding_arguments(parser: argparse.ArgumentParser) -> None:
    """`--shards` and `--shard-scheme`: how keys map to shards, fixed at a cluster's creation."""
    parser.add_argument(
        "--shards",
        type=positive_int,
        default=DEFAULT_SHARDING.count,
        help=f"shards of a new cluster (default: {DEFAULT_SHARDING.count}); fixed by its first join",
    )
    parser.add_argument(
        "--shard-scheme",
        choices=SCHEMES,
        default=DEFAULT_SHARDING.scheme,
        help="crc32c of the key (default), or first-char (the course's mapping, for its tests)",
    )


def sharding_or_exit(args: argparse.Namespace) -> Sharding:
    try:
        return Sharding(args.shards, args.shard_scheme)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    sm = subparsers.add_parser(
        "shardmaster",
        help="run one shardmaster replica",
        description="Run one replica of the configuration service until SIGTERM or Ctrl-C.",
    )
    add_common_server_arguments(sm)
    add_sharding_arguments(sm)
    sm.set_defaults(handler=run_shardmaster)

    kv = subparsers.add_parser(
        "serve",
        help="run one shardkv replica",
        description="Run one replica of a key/value replica group until SIGTERM or Ctrl-C.",
    )
    kv.add_argument("--gid", type=positive_int, required=True, help="replica group id")
    add_common_server_arguments(kv)
    kv.add_argument("--masters", type=address_list, required=True, help="shardmaster addresses, M0,M1,M2")
    kv.set_defaults(handler=run_shardkv)


def _settings(args: argparse.Namespace, role: str, group: int) -> NodeSettings:
    if args.me >= len(args.peers):
        raise CommandError(f"--me {args.me} is out of range for {len(args.peers)} peers", 2)
    return NodeSettings(
        cluster=args.cluster,
        role=role,
        group=group,
        me=args.me,
        peers=tuple(args.peers),
        directory=args.dir,
        bootstrap=args.bootstrap,
        unreliable=args.unreliable,
        credentials=_server_credentials(args),
        lease_s=None if args.read_lease_ms is None else args.read_lease_ms / 1000,
    )


def _lease_ms(text: str) -> int:
    value = positive_int(text)
    if value > LEASE_MS_MAX:
        raise argparse.ArgumentTypeError(f"a read lease must stay below the election timeout: 1..{LEASE_MS_MAX}")
    return value


def _server_credentials(args: argparse.Namespace) -> Credentials | None:
    """A server needs every role's key to check every caller; without any, only --insecure."""
    directory = args.credentials or (Path(os.environ[CREDENTIALS_ENV]) if os.environ.get(CREDENTIALS_ENV) else None)
    if directory is None:
        if args.insecure and args.tls_dir is not None:
            raise CommandError("--tls-dir needs credentials: TLS guards the wire, keys prove roles", 2)
        if args.insecure:
            return None
        raise CommandError(
            f"no credentials: pass --credentials DIR or set {CREDENTIALS_ENV}"
            " (`diskv cluster up` makes DIR/credentials), or --insecure for a trusted test setup",
            2,
        )
    if args.insecure:
        raise CommandError("--insecure and credentials exclude each other", 2)
    try:
        keys = load_credentials(directory, required=tuple(Role))
    except CredentialsError as exc:
        raise CommandError(f"credentials: {exc}", 2) from None
    tls_dir = args.tls_dir or (Path(os.environ[TLS_DIR_ENV]) if os.environ.get(TLS_DIR_ENV) else None)
    if tls_dir is None:
        return keys
    try:
        tls = load_tls(tls_dir)
    except CredentialsError as exc:
        raise CommandError(f"tls: {exc}", 2) from None
    if tls.server_context is None:
        raise CommandError(f"tls: {tls_dir} holds no cert.pem and key.pem to serve with", 2)
    return replace(keys, tls=tls)


def _run_node(node: ReplicaNode, args: argparse.Namespace) -> int:
    restrict_umask()
    configure_logging(args, log_file=args.log_file)
    settings = node.settings
    log.info(
        "%s starting at %s, data in %s", settings.node_id, settings.peers[settings.me], settings.directory
    )
    try:
        with contextlib.ExitStack() as stack:
            if args.metrics_port is not None:
                _metrics.watch_node(node)
                port = stack.enter_context(_metrics.serve_metrics(args.metrics_port, args.metrics_host))
                log.info("%s metrics at http://%s:%d/metrics", settings.node_id, args.metrics_host, port)
            stack.enter_context(profiling_on_signals())  # only with DISKV_PROFILE_DIR set
            trio.run(run_until_signalled, node.run)
    except BaseException as raised:  # noqa: BLE001 - start-up failures become one line
        exc = first_leaf(raised)
        if isinstance(exc, IdentityMismatchError | DirectoryInUseError):
            raise CommandError(str(exc)) from None
        if isinstance(exc, PermissionError):
            raise CommandError(f"cannot use {exc.filename}: permission denied") from None
        if isinstance(exc, OSError):
            raise CommandError(f"{settings.node_id}: {exc}") from None
        raise
    log.info("%s stopped", settings.node_id)
    return EXIT_OK


def run_shardmaster(args: argparse.Namespace) -> int:
    from diskv_trio.shardmaster import shardmaster_node

    sharding = sharding_or_exit(args)  # carried by this replica's joins; the first fixes it
    return _run_node(shardmaster_node(_settings(args, "shardmaster", 0), sharding), args)


def run_shardkv(args: argparse.Namespace) -> int:
    from diskv_trio.shardkv import shardkv_node

    return _run_node(shardkv_node(_settings(args, "shardkv", args.gid), args.masters), args)
