"""Reply frames queued for one connection, bounded in bytes, written by one task.

A caller that sends requests but never reads the replies would otherwise pin every reply
in the server's memory. Past `bytes_max` queued, the outbox overflows: the writer stops and
the connection is closed. A write that makes no progress for `WRITE_STALL_TIMEOUT_S` closes
it too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType

import trio

from ._limits import WRITE_BATCH_BYTES_MAX, WRITE_STALL_TIMEOUT_S


class OutboxOverflow(Exception):
    """More reply bytes are queued than the connection may hold."""


class Outbox:
    def __init__(self, bytes_max: int, on_overflow: Callable[[], None]) -> None:
        """`on_overflow` is called once the bound is passed: it must end the connection
        (the writer may be blocked in a send that the caller never lets finish)."""
        self._bytes_max = bytes_max
        self._on_overflow = on_overflow
        self._frames: deque[bytes] = deque()
        self._bytes = 0
        self._closed = False
        self._overflowed = False
        self._wakeup = trio.Event()

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def put(self, frame: bytes) -> None:
        """Queue a frame without blocking.

        Raises:
            trio.ClosedResourceError: the connection is closing.
            OutboxOverflow: the frame would pass the bound; the connection is closing.
        """
        if self._closed:
            raise trio.ClosedResourceError("connection closing")
        if self._bytes + len(frame) > self._bytes_max:
            self._overflowed = True
            self.close()
            self._on_overflow()
            raise OutboxOverflow(f"over {self._bytes_max} reply bytes queued")
        self._frames.append(frame)
        self._bytes += len(frame)
        self._wakeup.set()

    def close(self) -> None:
        """No more frames; the writer sends what is queued (unless overflowed) and returns."""
        self._closed = True
        self._wakeup.set()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def drain_to(self, stream: trio.abc.SendStream) -> None:
        """Write queued frames in order, coalesced, until closed and drained.

        Raises:
            trio.TooSlowError: the outbox overflowed, or a write stalled.
            trio.BrokenResourceError, trio.ClosedResourceError, OSError: the connection is gone.
        """
        frames = self._frames
        while True:
            if self._overflowed:
                raise trio.TooSlowError("reply queue overflowed")
            if not frames:
                if self._closed:
                    return
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            batch = [frames.popleft()]
            size = len(batch[0])
            while frames and size < WRITE_BATCH_BYTES_MAX:
                batch.append(frames.popleft())
                size += len(batch[-1])
            with trio.fail_after(WRITE_STALL_TIMEOUT_S):
                await stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
            self._bytes -= size
