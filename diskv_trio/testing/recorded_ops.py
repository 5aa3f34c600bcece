"""One client op, run with a deadline and recorded for the linearizability checker.

Shared by the crash sessions (`tools/crash/`) and the whole-cluster simulation: an op that
does not return in time is recorded with an unknown outcome, never as failed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import trio

from diskv_trio.client import Client

from .linearizability import HistoryRecorder

Kind = Literal["get", "put", "append", "delete", "cas"]


@dataclass
class WorkloadStats:
    ok: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.ok.values()) + sum(self.unknown.values())


async def recorded_op(
    kv: Client,
    recorder: HistoryRecorder,
    client_id: int,
    kind: Kind,
    key: str,
    value: str | None,
    timeout_s: float,
    stats: WorkloadStats,
    *,
    expected: str | None = None,
) -> tuple[bool, str | bool | None]:
    """Run one op and record it; (returned in time, output)."""
    token = recorder.record_call(client_id, kind, key, value, expected if kind == "cas" else None)
    output: str | bool | None = None
    try:
        with trio.move_on_after(timeout_s) as scope:
            if kind == "get":
                found = await kv.get(key)
                output = None if found is None else found.decode()
            elif kind == "delete":
                output = await kv.delete(key)
            elif kind == "cas":
                assert value is not None
                output = await kv.cas(key, expected, value)
            elif kind == "put":
                assert value is not None
                await kv.put(key, value)
            else:
                assert value is not None
                await kv.append(key, value)
    except BaseException:
        recorder.record_unknown(token)
        raise
    if scope.cancelled_caught:
        recorder.record_unknown(token)
        stats.unknown[kind] += 1
        return False, None
    recorder.record_return(token, output)
    stats.ok[kind] += 1
    return True, output
