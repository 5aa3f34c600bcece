"""The apply loop survives an instance forgotten while it waits, and asks for a transfer.

A peer adopts a higher min() from another peer's Forgotten answer while the apply loop
waits on the next instance; `wait_decided` then raises PaxosForgotten. The loop must turn
that into a state-transfer request (`behind`), not die.
"""

from __future__ import annotations

from typing import Any

import trio

from diskv_trio.paxos import Fate, PaxosForgotten
from diskv_trio.rsm import ReplicatedStateMachine


class ForgettingPeer:
    """Forgets everything below 756 while the apply loop waits on 592."""

    leader_mode = False  # classic: every replica proposes

    def __init__(self) -> None:
        self._min = 0

    def min(self) -> int:
        return self._min

    def max(self) -> int:
        return 600

    def status(self, seq: int) -> tuple[Fate, Any]:
        return (Fate.FORGOTTEN, None) if seq < self._min else (Fate.PENDING, None)

    async def wait_decided(self, seq: int) -> Any:
        await trio.sleep(0.05)
        self._min = 756
        raise PaxosForgotten(f"instance {seq} is below min() = {self._min}")

    def start(self, seq: int, value: Any) -> None:
        pass

    def done(self, seq: int) -> None:
        pass


class NullMachine:
    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        return {"err": "OK"}

    def snapshot(self) -> dict[str, Any]:
        return {}


class NullStorage:
    def should_compact(self, *, idle: bool) -> bool:
        return False


async def test_forgotten_while_waiting_requests_a_state_transfer(autojump_clock: trio.abc.Clock) -> None:
    rsm = ReplicatedStateMachine(
        peer=ForgettingPeer(),  # type: ignore[arg-type]
        machine=NullMachine(),
        applied=591,
        storage=NullStorage(),  # type: ignore[arg-type]
    )
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rsm.run)
            await rsm.behind.wait()
            nursery.cancel_scope.cancel()
    assert rsm.applied == 591
