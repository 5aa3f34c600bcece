"""diskv-trio: a sharded, Paxos-replicated key/value store on Trio.

The public client API is `connect`, which yields a `Client` (and `connect_blocking` and
`connect_asyncio`, the same client for blocking and asyncio code); the errors it raises derive
from `DiskvError`; `Client.fail_after` raises `WaitTimeoutError` (a `trio.TooSlowError`)
naming what the client was waiting for.
"""

from diskv_trio._discovery import DiscoveryError
from diskv_trio._portal import DiskvTimeoutError
from diskv_trio._waits import WaitCause, WaitTimeoutError
from diskv_trio.asyncio_client import AsyncioClient, connect_asyncio
from diskv_trio.blocking import BlockingClient, connect_blocking
from diskv_trio.client import Client, DiskvError, InvalidRequestError, RejectedError, connect

__all__ = [
    "AsyncioClient",
    "BlockingClient",
    "Client",
    "DiscoveryError",
    "DiskvError",
    "DiskvTimeoutError",
    "InvalidRequestError",
    "RejectedError",
    "WaitCause",
    "WaitTimeoutError",
    "connect",
    "connect_asyncio",
    "connect_blocking",
]
