"""What every `diskv` subcommand shares: errors, logging, address lists, signal handling."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import NoReturn

import trio

from diskv_trio._discovery import DATA_DIR_ENV, find_credentials
from diskv_trio._logging import LOG_FORMATS, LOG_LEVELS
from diskv_trio._logging import configure_logging as setup_logging
from diskv_trio.net import (
    CODE_TLS,
    CREDENTIALS_ENV,
    TLS_DIR_ENV,
    Credentials,
    CredentialsError,
    Identity,
    Role,
    RpcPool,
    open_rpc_pool,
    parse_address,
)

PROGRAM = "diskv"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure to report as one line on stderr with a non-zero exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one `diskv: ...` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message}", EXIT_USAGE)


def credentials_or_exit(data_dir: Path | None = None) -> Credentials | None:
    """The keys and TLS settings this command holds (see `find_credentials`), or a one-line error."""
    try:
        return find_credentials(data_dir=data_dir)
    except CredentialsError as exc:
        raise CommandError(f"credentials: {exc}") from None


def describe_net_error(exc: Exception) -> str:
    """One line for a failed call; a refused key says where keys are looked for."""
    text = str(exc)
    if getattr(exc, "code", None) == CODE_TLS:
        text += (
            f" (TLS settings are read from {TLS_DIR_ENV}, or the tls folder of"
            " `diskv cluster up --tls` that its cluster.json names)"
        )
    if getattr(exc, "code", None) == "auth":
        text += (
            f" (the key is read from --credentials, {CREDENTIALS_ENV}, or ./diskv-data/credentials"
            " of `diskv cluster up`)"
        )
    return text


def operator_pool(
    cluster: str, name: str, data_dir: Path | None = None
) -> AbstractAsyncContextManager[RpcPool]:
    """A pool that calls servers as an operator, with the operator key if one is found."""
    identity = Identity(cluster, Role.OPERATOR, f"{name}-{os.getpid()}")
    return open_rpc_pool(identity, credentials=credentials_or_exit(data_dir))


def address_list(text: str) -> list[str]:
    """argparse type for `A0,A1,A2` where each is `unix:/path` or `HOST:PORT`."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated addresses, got {text!r}")
    for part in parts:
        try:
            parse_address(part)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parts


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def add_logging_arguments(parser: argparse.ArgumentParser, default_level: str = "info") -> None:
    """`--log-level`, `--log-format` and `-v` (the same as `--log-level debug`)."""
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default_level, help=f"least severe level logged (default: {default_level})"
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text", help="text lines or JSON lines (default: text)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (--log-level debug)")


def configure_logging(args: argparse.Namespace, *, log_file: Path | None = None) -> None:
    """Apply the logging flags of `add_logging_arguments`."""
    level = "debug" if getattr(args, "verbose", False) else getattr(args, "log_level", "info")
    setup_logging(level, getattr(args, "log_format", "text"), log_file=log_file)


def add_dir_argument(parser: argparse.ArgumentParser, help_text: str = "the local cluster's data directory") -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        help=f"{help_text} (default: ${DATA_DIR_ENV}, else ./diskv-data)",
    )


def positive_seconds(text: str) -> float:
    """argparse type for a duration: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive, finite number of seconds, got {text!r}")
    return value


PARENT_PID_ENV = "DISKV_PARENT_PID"
"""Set by the local supervisor: the server stops when that process is gone."""

PARENT_CHECK_S = 0.5
"""How often a supervised server checks that its supervisor is still alive."""


async def _wait_parent_gone() -> None:
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected or not expected.isdigit():
        await trio.sleep_forever()
    # Polling is the only portable way to notice a parent's death from the child.
    while os.getppid() == int(expected):  # noqa: ASYNC110
        await trio.sleep(PARENT_CHECK_S)
    logging.getLogger("diskv").warning("supervisor %s is gone, stopping", expected)


async def run_until_signalled(body: Callable[[], Awaitable[object]]) -> bool:
    """Run `body` until it returns, SIGTERM / SIGINT arrives, or the supervisor dies.

    Returns True if a signal (or the supervisor's death) stopped it.
    """
    stopped = False
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal stopped
                async for signum in signals:
                    logging.getLogger("diskv").info(
                        "received %s, stopping", signal.Signals(signum).name
                    )
                    stopped = True
                    nursery.cancel_scope.cancel()
                    return

            async def work() -> None:
                await body()
                nursery.cancel_scope.cancel()

            async def orphaned() -> None:
                nonlocal stopped
                await _wait_parent_gone()
                stopped = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(work)
            nursery.start_soon(orphaned)
    return stopped


def leaves(exc: BaseException) -> list[BaseException]:
    """Every non-group exception inside `exc`, depth first."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def first_leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside `exc` (Trio wraps task errors in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
