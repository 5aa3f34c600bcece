"""The client for blocking code: the Trio client's API as plain method calls.

Each call blocks the calling thread until the store answers (or `timeout_s` runs out, then
`DiskvTimeoutError`); the client itself runs in a helper thread (`TrioPortal`), so any
number of threads may share one `BlockingClient`. Same errors and limits as `Client`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ._portal import TrioPortal
from .client import Client, Key, Value
from .net import Credentials
from .shardmaster import Config

T = TypeVar("T")


class BlockingClient:
    """A `Client` for blocking code; use `connect_blocking` to open one."""

    def __init__(self, portal: TrioPortal, timeout_s: float | None) -> None:
        self._portal = portal
        self.timeout_s = timeout_s
        """Bound on each call in seconds (None: retry until the store answers)."""

    def _call(self, call: Callable[[Client], Awaitable[T]]) -> T:
        return self._portal.submit(call, self.timeout_s).result()

    def get(self, key: Key) -> bytes | None:
        """The value of `key`, or None if it is absent."""
        return self._call(lambda kv: kv.get(key))

    def get_text(self, key: Key, encoding: str = "utf-8") -> str | None:
        """The value of `key` as text, or None if it is absent."""
        return self._call(lambda kv: kv.get_text(key, encoding))

    def put(self, key: Key, value: Value) -> None:
        """Set `key` to `value`."""
        self._call(lambda kv: kv.put(key, value))

    def append(self, key: Key, value: Value) -> None:
        """Append `value` to the value of `key`."""
        self._call(lambda kv: kv.append(key, value))

    def delete(self, key: Key) -> bool:
        """Remove `key`; True if it existed."""
        return self._call(lambda kv: kv.delete(key))

    def cas(self, key: Key, expected: Value | None, new: Value) -> bool:
        """Set `key` to `new` if its value is `expected` (None: absent); True if it wrote."""
        return self._call(lambda kv: kv.cas(key, expected, new))

    def config(self) -> Config:
        """The latest configuration."""
        return self._call(lambda kv: kv.config())

    def close(self) -> None:
        """Stop the helper thread; calls in flight raise `DiskvError`."""
        self._portal.close()


@contextmanager
def connect_blocking(
    masters: Sequence[str] | str | None = None,
    *,
    cluster: str | None = None,
    credentials: Credentials | Path | None = None,
    timeout_s: float | None = 30.0,
) -> Iterator[BlockingClient]:
    """Open a blocking client; the arguments are `diskv_trio.connect`'s, plus `timeout_s`.

    Raises:
        DiscoveryError, CredentialsError: as `connect`.
    """
    portal = TrioPortal(masters, cluster, credentials)
    portal.start()
    client = BlockingClient(portal, timeout_s)
    try:
        yield client
    finally:
        client.close()
