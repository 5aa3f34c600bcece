"""diskv-trio: a sharded, Paxos-replicated key/value store on Trio.

The public client API is `connect`, which yields a `Client`; the errors it raises derive
from `DiskvError`.
"""

from diskv_trio._discovery import DiscoveryError
from diskv_trio.client import Client, DiskvError, InvalidRequestError, RejectedError, connect

__all__ = [
    "Client",
    "DiscoveryError",
    "DiskvError",
    "InvalidRequestError",
    "RejectedError",
    "connect",
]
