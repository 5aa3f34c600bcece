"""The client for asyncio code: the Trio client's API as asyncio coroutines.

The Trio client runs in a helper thread (`TrioPortal`); each call is awaited here through
`asyncio.wrap_future`, so the event loop never blocks, and cancelling the awaiting asyncio
task cancels the call. Same errors and limits as `Client`; a call that outlives `timeout_s`
raises `DiskvTimeoutError` (or bound it with `asyncio.timeout`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from ._portal import TrioPortal
from .client import Client, Key, Value
from .net import Credentials
from .shardmaster import Config

T = TypeVar("T")


class AsyncioClient:
    """A `Client` for asyncio code; use `connect_asyncio` to open one."""

    def __init__(self, portal: TrioPortal, timeout_s: float | None) -> None:
        self._portal = portal
        self.timeout_s = timeout_s
        """Bound on each call in seconds (None: retry until the store answers)."""

    async def _call(self, call: Callable[[Client], Awaitable[T]]) -> T:
        return await asyncio.wrap_future(self._portal.submit(call, self.timeout_s))

    async def get(self, key: Key) -> bytes | None:
        """The value of `key`, or None if it is absent."""
        return await self._call(lambda kv: kv.get(key))

    async def get_text(self, key: Key, encoding: str = "utf-8") -> str | None:
        """The value of `key` as text, or None if it is absent."""
        return await self._call(lambda kv: kv.get_text(key, encoding))

    async def put(self, key: Key, value: Value) -> None:
        """Set `key` to `value`."""
        await self._call(lambda kv: kv.put(key, value))

    async def append(self, key: Key, value: Value) -> None:
        """Append `value` to the value of `key`."""
        await self._call(lambda kv: kv.append(key, value))

    async def delete(self, key: Key) -> bool:
        """Remove `key`; True if it existed."""
        return await self._call(lambda kv: kv.delete(key))

    async def cas(self, key: Key, expected: Value | None, new: Value) -> bool:
        """Set `key` to `new` if its value is `expected` (None: absent); True if it wrote."""
        return await self._call(lambda kv: kv.cas(key, expected, new))

    async def config(self) -> Config:
        """The latest configuration."""
        return await self._call(lambda kv: kv.config())


@asynccontextmanager
async def connect_asyncio(
    masters: Sequence[str] | str | None = None,
    *,
    cluster: str | None = None,
    credentials: Credentials | Path | None = None,
    timeout_s: float | None = 30.0,
) -> AsyncIterator[AsyncioClient]:
    """Open an asyncio client; the arguments are `diskv_trio.connect`'s, plus `timeout_s`.

    Raises:
        DiscoveryError, CredentialsError: as `connect`.
    """
    portal = TrioPortal(masters, cluster, credentials)
    await asyncio.to_thread(portal.start)
    try:
        yield AsyncioClient(portal, timeout_s)
    finally:
        await asyncio.to_thread(portal.close)
