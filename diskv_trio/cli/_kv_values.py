"""The bodies of `diskv get|put|append|delete|cas`: bytes in, bytes out, exit status 3.

Rules kept here:
- Arguments are the bytes the shell passed (`os.fsencode`); a value of ``-`` is read from
  stdin (at most one per command), so binary values work: ``diskv put KEY - < file``.
- `get` writes the value's bytes to stdout unchanged (plus a newline only on a terminal), so
  ``diskv get KEY > file`` gives back the same bytes.
- Exit status `EXIT_NOT_HELD` (3): the store answered but the condition did not hold, with
  one line on stderr: no such key (get, delete), or not written (cas).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

from diskv_trio.client import Client
from diskv_trio.kvproto import VALUE_BYTES_MAX

from ._common import EXIT_USAGE, CommandError

EXIT_NOT_HELD = 3
"""The store answered, but the key is absent (get, delete) or the value was not as expected
(cas): scripts tell this apart from a failure (1) or a usage error (2)."""

STDIN = "-"


def add_kv_commands(subparsers: argparse._SubParsersAction, add_connection_arguments: object, handler: object) -> None:
    """`delete` and `cas`, beside the get/put/append the caller registers."""
    assert callable(add_connection_arguments)
    delete = subparsers.add_parser("delete", help="remove a key", description="Remove KEY. Exit status 3 if it did not exist.")
    delete.add_argument("key")
    add_connection_arguments(delete)
    delete.set_defaults(handler=handler, op="delete")
    cas = subparsers.add_parser(
        "cas",
        help="set a key only if its value is the expected one",
        description="Set KEY to NEW only if its value is EXPECTED; with --absent, only if KEY is "
        "absent (give no EXPECTED). A value of - is read from stdin. Exit status 3 if not written.",
    )
    cas.add_argument("key")
    cas.add_argument("values", nargs="+", metavar="[EXPECTED] NEW")
    cas.add_argument("--absent", action="store_true", help="write only if KEY is absent")
    add_connection_arguments(cas)
    cas.set_defaults(handler=handler, op="cas")


def _value_argument(text: str, stdin_used: list[bool]) -> bytes:
    if text != STDIN:
        return os.fsencode(text)
    if stdin_used:
        raise CommandError("only one value can come from stdin (-)", EXIT_USAGE)
    stdin_used.append(True)
    data = sys.stdin.buffer.read(VALUE_BYTES_MAX + 1)
    if len(data) > VALUE_BYTES_MAX:
        raise CommandError(f"the value on stdin is larger than {VALUE_BYTES_MAX} bytes")
    return data


def parse_values(args: argparse.Namespace) -> tuple[bytes | None, bytes | None]:
    """(expected, value) of the command, read before connecting (stdin included)."""
    stdin_used: list[bool] = []
    if args.op in ("put", "append"):
        return None, _value_argument(args.value, stdin_used)
    if args.op != "cas":
        return None, None
    wanted = 1 if args.absent else 2
    if len(args.values) != wanted:
        usage = "cas --absent KEY NEW" if args.absent else "cas KEY EXPECTED NEW (or cas --absent KEY NEW)"
        raise CommandError(f"usage: diskv {usage}", EXIT_USAGE)
    values = [_value_argument(text, stdin_used) for text in args.values]
    return (None, values[0]) if args.absent else (values[0], values[1])


def _write_value(args: argparse.Namespace, value: bytes) -> None:
    if getattr(args, "json", False):
        try:
            shown: object = value.decode("utf-8")
        except UnicodeDecodeError:
            shown = {"base64": base64.b64encode(value).decode()}
        print(json.dumps({"key": args.key, "value": shown}, ensure_ascii=False))
        return
    sys.stdout.buffer.write(value + (b"\n" if sys.stdout.isatty() else b""))
    sys.stdout.flush()


async def run_kv_op(kv: Client, args: argparse.Namespace, expected: bytes | None, value: bytes | None) -> str | None:
    """Do the command's op; the line to report with `EXIT_NOT_HELD`, or None."""
    key = os.fsencode(args.key)
    if args.op == "get":
        found = await kv.get(key)
        if found is None:
            return f"get: no such key {args.key!r}"
        _write_value(args, found)
    elif args.op == "delete":
        if not await kv.delete(key):
            return f"delete: no such key {args.key!r}"
    elif args.op == "cas":
        assert value is not None
        if not await kv.cas(key, expected, value):
            return f"cas: not written: {args.key!r} was not {'absent' if expected is None else 'the expected value'}"
    else:
        assert value is not None
        await (kv.put if args.op == "put" else kv.append)(key, value)
    return None
