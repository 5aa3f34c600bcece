"""An in-memory twin of the store the gateway calls, and a driver for plans without I/O."""

from __future__ import annotations

from collections.abc import Callable

import trio

from diskv_trio.resp import KvCas, KvDelete, KvGet, KvPut, Plan, Reply


class MemoryStore:
    """A dict behind the `KvStore` calls; `hold` makes every call wait until it is set."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.calls: list[str] = []
        self.hold: trio.Event | None = None
        self.started = trio.Event()
        self.before_cas: Callable[[bytes], None] | None = None
        self.last_wait: object | None = None

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        await trio.lowlevel.checkpoint()

    async def get(self, key: bytes) -> bytes | None:
        await self._enter("get")
        return self.data.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        await self._enter("put")
        self.data[key] = value

    async def cas(self, key: bytes, expected: bytes | None, new: bytes) -> bool:
        await self._enter("cas")
        if self.before_cas is not None:
            self.before_cas(key)
        if self.data.get(key) != expected:
            return False
        self.data[key] = new
        return True

    async def delete(self, key: bytes) -> bool:
        await self._enter("delete")
        return self.data.pop(key, None) is not None


def run_plan(plan: Plan, data: dict[bytes, bytes], before_cas: Callable[[], None] | None = None) -> Reply:
    """Drive `plan` synchronously against `data`; `before_cas` runs before each compare-and-set."""
    results: list[bytes | bool | None] | None = None
    try:
        while True:
            calls = plan.send(results) if results is not None else next(plan)
            results = []
            for call in calls:
                if isinstance(call, KvGet):
                    results.append(data.get(call.key))
                elif isinstance(call, KvPut):
                    data[call.key] = call.value
                    results.append(None)
                elif isinstance(call, KvCas):
                    if before_cas is not None:
                        before_cas()
                    ok = data.get(call.key) == call.expected
                    if ok:
                        data[call.key] = call.new
                    results.append(ok)
                else:
                    assert isinstance(call, KvDelete)
                    results.append(data.pop(call.key, None) is not None)
    except StopIteration as finished:
        reply: Reply = finished.value
        return reply
