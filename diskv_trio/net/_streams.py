"""Stream helpers shared by server and pool: connect, read messages, write frames."""

from __future__ import annotations

from typing import Any

import trio

from ._address import Address
from ._limits import RECEIVE_BYTES_MAX, WRITE_BATCH_BYTES_MAX
from ._protocol import FrameDecoder
from ._tls import Tls, wrap_client
from ._transport import SOCKETS, Transport

TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a stream raises when the connection is gone."""


async def open_stream(
    address: Address, tls: Tls | None = None, transport: Transport = SOCKETS
) -> trio.abc.Stream:
    """Connect to `address` through `transport`, over TLS when `tls` is given (see
    `_tls.wrap_client`).

    Raises:
        OSError: nothing listens there.
        HandshakeError: code ``tls``: the TLS handshake was refused.
    """
    stream = await transport.open_stream(address)
    if tls is None:
        return stream
    return await wrap_client(stream, tls, address)


async def receive_message(
    stream: trio.abc.ReceiveStream, decoder: FrameDecoder
) -> dict[Any, Any] | None:
    """Return the next message, or None at a clean end of stream.

    Raises:
        ProtocolError: a bad frame, or the stream ended inside a frame.
    """
    while True:
        message = decoder.next_message()
        if message is not None:
            return message
        data = await stream.receive_some(RECEIVE_BYTES_MAX)
        if not data:
            decoder.check_eof()
            return None
        decoder.feed(data)


async def write_frames(
    stream: trio.abc.SendStream, frames: trio.MemoryReceiveChannel[bytes]
) -> None:
    """Send every frame from `frames` in order, coalescing queued ones into one write.

    Owning the stream's send side in one task means a cancelled caller can never leave half
    a frame on the wire. Returns when the channel is closed and drained.

    Raises:
        trio.BrokenResourceError, trio.ClosedResourceError, OSError: the connection is gone.
    """
    async with frames:
        async for frame in frames:
            batch = [frame]
            size = len(frame)
            while size < WRITE_BATCH_BYTES_MAX:
                try:
                    more = frames.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                batch.append(more)
                size += len(more)
            await stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
