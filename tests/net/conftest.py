"""Shared fixtures for the RPC layer tests: short socket dirs, identities, a test service."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from diskv_trio.net import ApplicationError, CallContext


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (AF_UNIX paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="dkn-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Service:
    """Handlers used by the tests, recording what they executed."""

    def __init__(self) -> None:
        self.executed: list[Any] = []
        self.never = trio.Event()  # never set: a handler waiting on it outlives any deadline
        self.contexts: list[CallContext] = []

    async def echo(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        self.executed.append(args.get("n"))
        self.contexts.append(context)
        return {"echo": args}

    async def big(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        """A reply of `size` bytes, for callers that do not read their replies."""
        return {"data": b"x" * int(args.get("size", 0))}

    async def paxos_echo(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        self.executed.append(args.get("n"))
        return {"n": args.get("n")}

    async def hang(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        await self.never.wait()
        return {}

    async def reject(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        raise ApplicationError("wrong-group", "not my shard")

    async def crash(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        raise RuntimeError("boom")

    async def not_a_map(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        return [1, 2]  # type: ignore[return-value]

    def handlers(self) -> dict[str, Any]:
        return {
            "test.echo": self.echo,
            "paxos.echo": self.paxos_echo,
            "test.hang": self.hang,
            "test.reject": self.reject,
            "test.crash": self.crash,
            "test.not_a_map": self.not_a_map,
        }


@pytest.fixture
def service() -> Service:
    return Service()
