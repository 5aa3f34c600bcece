"""The `diskv` command line."""

from __future__ import annotations

import sys

from . import _client_cmds, _cluster_cmds, _servers
from ._common import PROGRAM, ArgumentParser, CommandError


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROGRAM,
        description="A sharded, Paxos-replicated key/value store whose servers survive crashes and disk loss.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _servers.register(subparsers)
    _client_cmds.register(subparsers)
    _cluster_cmds.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `diskv` with `argv` (default: the process's arguments); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except CommandError as exc:
        message = str(exc)
        if not message.startswith(PROGRAM):
            message = f"{PROGRAM}: {message}"
        print(message, file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
