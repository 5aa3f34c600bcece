"""Callers of `PaxosPeer.read` waiting for their read round, by read id."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import trio

from ._errors import PaxosNotLeader
from ._ready import Ready


@dataclass(slots=True)
class _Waiter:
    done: trio.Event = field(default_factory=trio.Event)
    index: int | None = None  # None once done: refused (not leading)


class ReadWaiters:
    def __init__(self) -> None:
        self._ids = itertools.count()
        self._waiting: dict[int, _Waiter] = {}

    def new(self) -> int:
        read_id = next(self._ids)
        self._waiting[read_id] = _Waiter()
        return read_id

    async def wait(self, read_id: int, hint: object) -> int:
        """The read's index once confirmed.

        Raises:
            PaxosNotLeader: this peer is not (or stopped being) the leader.
        """
        waiter = self._waiting[read_id]
        try:
            await waiter.done.wait()
        finally:
            self._waiting.pop(read_id, None)
        if waiter.index is None:
            raise PaxosNotLeader(hint() if callable(hint) else None)
        return waiter.index

    def notify(self, ready: Ready) -> None:
        for read_id, index in ready.reads:
            waiter = self._waiting.get(read_id)
            if waiter is not None:
                waiter.index = index
                waiter.done.set()
        for read_id in ready.reads_failed:
            waiter = self._waiting.get(read_id)
            if waiter is not None:
                waiter.done.set()
