"""The ends of simulated connections and listeners, moved by `SimNetwork`.

Rules kept here (Trio's stream contract): `send_all` and `receive_some` are checkpoints; a
closed end raises `ClosedResourceError`, a reset connection `BrokenResourceError`; a read past
the far end's close returns ``b""``. Closing an end sends a FIN behind the data in flight;
data that reaches a closed end is answered by the network with a reset.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._network import SimNetwork


class Pipe:
    """One direction of one connection: bytes on their way to one stream end."""

    __slots__ = (
        "connection",
        "src",
        "dst",
        "buffer",
        "eof",
        "reset",
        "closed",
        "changed",
        "last_due",
    )

    def __init__(self, connection: int, src: str, dst: str) -> None:
        self.connection = connection
        self.src = src
        self.dst = dst
        self.buffer = bytearray()
        self.eof = False  # the far end closed: a read past the buffer returns b""
        self.reset = False  # the connection was reset: reads and writes fail
        self.closed = False  # the receiving end was closed: data reaching it is answered by a reset
        self.changed = trio.Event()
        self.last_due = 0.0

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class SimStream(trio.abc.Stream):
    """One end of a simulated connection."""

    def __init__(self, network: SimNetwork, host: str, incoming: Pipe, outgoing: Pipe) -> None:
        self._network = network
        self.host = host
        self._incoming = incoming
        self._outgoing = outgoing

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self._incoming.closed:
            raise trio.ClosedResourceError("stream is closed")
        if self._incoming.reset:
            raise trio.BrokenResourceError("connection reset by peer")
        if data:
            self._network.transmit(self._outgoing, bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        pipe = self._incoming
        while True:
            if pipe.closed:
                raise trio.ClosedResourceError("stream is closed")
            if pipe.buffer:
                size = len(pipe.buffer) if max_bytes is None else max_bytes
                data = bytes(pipe.buffer[:size])
                del pipe.buffer[:size]
                return data
            if pipe.reset:
                raise trio.BrokenResourceError("connection reset by peer")
            if pipe.eof:
                return b""
            await pipe.changed.wait()

    async def aclose(self) -> None:
        self.close_now()
        await trio.lowlevel.checkpoint()

    def close_now(self) -> None:
        """Close this end at once: the far end reads the end of stream after the delay."""
        if self._incoming.closed:
            return
        self._incoming.closed = True
        self._incoming.buffer.clear()
        self._incoming.notify()
        if not self._incoming.reset:
            self._network.send_control(self._outgoing, "fin")
        self._network.forget(self)


class SimListener(trio.abc.Listener[trio.abc.Stream]):
    """Connections accepted at one address of one host."""

    def __init__(self, network: SimNetwork, host: str, address: str) -> None:
        self._network = network
        self.host = host
        self.address = address
        self._pending: deque[SimStream] = deque()
        self._changed = trio.Event()
        self.closed = False

    def push(self, stream: SimStream) -> None:
        self._pending.append(stream)
        self._changed.set()
        self._changed = trio.Event()

    async def accept(self) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        while True:
            if self.closed:
                raise trio.ClosedResourceError("listener is closed")
            if self._pending:
                return self._pending.popleft()
            await self._changed.wait()

    async def aclose(self) -> None:
        self.close_now()
        await trio.lowlevel.checkpoint()

    def close_now(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._changed.set()
        while self._pending:
            self._pending.popleft().close_now()
        self._network.unbind(self)
