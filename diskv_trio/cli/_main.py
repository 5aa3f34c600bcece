"""The `diskv` command line.

Rules kept here:
- No traceback reaches a user: a `CommandError` is one line on stderr with its status, Ctrl-C
  exits 130 without a word, a closed stdout pipe exits quietly, and anything unexpected is one
  line naming the error (`DISKV_TRACEBACK=1` shows the traceback, for bug reports).
- Errors raised inside Trio nurseries arrive wrapped in exception groups; they are unwrapped
  here, once, for every command.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version

import argcomplete

from . import _client_cmds, _cluster_cmds, _resp_cmd, _servers, _status_cmd
from ._common import PROGRAM, ArgumentParser, CommandError, leaves

EXIT_INTERRUPTED = 130
"""What a shell reports for a command stopped by SIGINT (128 + 2)."""

TRACEBACK_ENV = "DISKV_TRACEBACK"

EXAMPLES = """\
examples:
  diskv cluster up --dir ./diskv-data      start a local cluster (runs until Ctrl-C)
  diskv put greeting hello                 clients beside it find it (or --dir / DISKV_DIR)
  diskv get greeting --json
  diskv status                             one verdict line, then every group and server
  diskv cluster kill g100-1 --lose-disk    try out a failure

shell completion (bash/zsh): eval "$(register-python-argcomplete diskv)"
"""


def package_version() -> str:
    try:
        return version("diskv-trio")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROGRAM,
        description="A sharded, Paxos-replicated key/value store whose servers survive crashes and disk loss.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _servers.register(subparsers)
    _client_cmds.register(subparsers)
    _cluster_cmds.register(subparsers)
    _status_cmd.register(subparsers)
    _resp_cmd.register(subparsers)
    return parser


def report_failure(raised: BaseException) -> int:
    """Print one line for `raised` (possibly a group) and return the exit status."""
    found = leaves(raised)
    for exc in found:
        if isinstance(exc, CommandError):
            message = str(exc)
            if not message.startswith(PROGRAM):
                message = f"{PROGRAM}: {message}"
            print(message, file=sys.stderr)
            return exc.status
    if any(isinstance(exc, KeyboardInterrupt) for exc in found):
        return EXIT_INTERRUPTED
    if all(isinstance(exc, BrokenPipeError) for exc in found):
        # `diskv get k | head -0`: the reader left; say nothing and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    exc = found[0]
    if os.environ.get(TRACEBACK_ENV):
        traceback.print_exception(raised)
    print(
        f"{PROGRAM}: unexpected error: {type(exc).__name__}: {exc} "
        f"(set {TRACEBACK_ENV}=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run `diskv` with `argv` (default: the process's arguments); return the exit status."""
    parser = build_parser()
    argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except SystemExit:
        raise  # --help and --version
    except BaseException as raised:  # noqa: BLE001 - every failure becomes one line
        return report_failure(raised)
