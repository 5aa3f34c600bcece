"""Shared options and fixtures for the Paxos tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption(
            "--rewrite",
            action="store_true",
            default=False,
            help="regenerate the expected output of transcript tests (tests/testdata/...)",
        )
    except ValueError:
        pass  # another area registered it already; same meaning
    parser.addoption(
        "--paxos-seed",
        action="append",
        type=int,
        default=[],
        help="run the Paxos simulation with only this seed (repeatable); also PAXOS_SEED=...",
    )
    parser.addoption(
        "--paxos-seeds",
        type=int,
        default=None,
        help="number of random seeds the Paxos simulation runs (default: PAXOS_SEEDS or 120)",
    )


@pytest.fixture
def socket_dir() -> Iterator[str]:
    """A short directory for Unix sockets (AF_UNIX paths are limited to ~107 bytes)."""
    path = tempfile.mkdtemp(dir="/tmp", prefix="px-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
