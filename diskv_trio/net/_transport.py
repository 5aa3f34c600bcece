"""How the RPC layer reaches the network: open a stream to an address, listen at one.

Rules kept here:
- `RpcPool` and `RpcServer` touch sockets only through a `Transport`. `SOCKETS`, the
  default, is the operating system's (TCP, and Unix-domain sockets whose file it removes
  when done); a simulation passes its own, so the same server code runs on a simulated
  network without a switch anywhere in it.
- A transport moves bytes and nothing else: TLS wraps whatever stream it returns (`_tls`),
  and the handshake, framing and limits sit above it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import trio

from ._address import Address, TcpAddress, UnixAddress
from ._unix_listener import open_unix_listener, remove_socket_file


@dataclass(frozen=True, slots=True)
class Listening:
    """What `Transport.listen` yields: the address bound (TCP port 0 resolved) and the
    listeners to serve with `trio.serve_listeners`."""

    address: Address
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]]


class Transport(Protocol):
    """Opens connections and listens; see `SocketTransport` for the real one."""

    async def open_stream(self, address: Address) -> trio.abc.Stream:
        """Connect to `address`.

        Raises:
            OSError: nothing listens there, or the network refused the connection.
        """
        ...

    def listen(self, address: Address) -> AbstractAsyncContextManager[Listening]:
        """Bind `address` for the duration of the block; leaving it stops listening.

        Raises:
            OSError: the address cannot be bound (in use, no such interface).
        """
        ...


class SocketTransport:
    """The operating system's sockets: TCP, and Unix-domain sockets (`_unix_listener`)."""

    async def open_stream(self, address: Address) -> trio.abc.Stream:
        if isinstance(address, UnixAddress):
            return await trio.open_unix_socket(address.path)
        return await trio.open_tcp_stream(address.host, address.port)

    @asynccontextmanager
    async def listen(self, address: Address) -> AsyncIterator[Listening]:
        created: tuple[int, int] | None = None
        if isinstance(address, UnixAddress):
            listener, created = await open_unix_listener(address.path)
            listeners = [listener]
            bound: Address = address
        else:
            listeners = await trio.open_tcp_listeners(address.port, host=address.host)
            bound = TcpAddress(address.host, listeners[0].socket.getsockname()[1])
        try:
            yield Listening(bound, listeners)
        finally:
            for each in listeners:
                each.socket.close()
            if isinstance(address, UnixAddress) and created is not None:
                remove_socket_file(address.path, created)


SOCKETS = SocketTransport()
"""The default transport of every pool and server."""
