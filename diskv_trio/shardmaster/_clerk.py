"""The shardmaster clerk: Join / Leave / Move / Query against any live shardmaster."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import trio

from diskv_trio.kvproto import (
    REDIRECT,
    SM_JOIN,
    SM_LEAVE,
    SM_MOVE,
    SM_QUERY,
    SM_QUERY_APPLIED,
    Code,
    leader_hint,
)
from diskv_trio.net import NetError, RpcPool, RpcRemoteError, RpcUnavailable

from ._config import Config

CALL_DEADLINE_S = 2.0
"""One attempt at one shardmaster; a partitioned master is abandoned after this."""

ROUND_PAUSE_S = 0.1
"""Pause after a round in which no shardmaster answered (as the original clerk)."""


class ShardmasterError(Exception):
    """Raised when a shardmaster rejects an op (bad gid, bad shard, unknown op)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ShardmasterClerk:
    """Calls the shardmasters in turn until one answers; retries forever (use cancel scopes).

    Args:
        masters: the shardmasters' addresses.
        pool: an open RPC pool to send through.
    """

    def __init__(self, masters: Sequence[str], pool: RpcPool) -> None:
        if not masters:
            raise ValueError("at least one shardmaster address is needed")
        self.masters = list(masters)
        self._pool = pool
        self._preferred = 0

    async def _call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        count = len(self.masters)
        # Knowing every replica, we follow ErrNotLeader ourselves; a clerk of one replica
        # lets it forward the request to the leader, and so do we after a round in which
        # the leader did not answer us (a replica that cannot reach it either runs for it).
        wire = args | {REDIRECT: True} if count > 1 else args
        while True:
            queue = deque((self._preferred + offset) % count for offset in range(count))
            tried: set[int] = set()
            while queue:
                index = queue.popleft()
                if index in tried:
                    continue
                tried.add(index)
                try:
                    reply = await self._pool.call(
                        self.masters[index], method, wire, deadline_s=CALL_DEADLINE_S
                    )
                except RpcUnavailable:
                    continue
                except RpcRemoteError as exc:
                    if exc.code == Code.NOT_LEADER:
                        hint = leader_hint(exc.message, count)
                        if hint is not None:
                            queue.appendleft(hint)
                        continue
                    if exc.code in (Code.NOT_READY, Code.BUSY, Code.INTERNAL):
                        continue
                    raise ShardmasterError(exc.code, exc.message) from exc
                self._preferred = index
                return reply
            wire = args
            await trio.sleep(ROUND_PAUSE_S)

    async def join(self, gid: int, servers: Sequence[str]) -> None:
        await self._call(SM_JOIN, {"gid": gid, "servers": list(servers)})

    async def leave(self, gid: int) -> None:
        await self._call(SM_LEAVE, {"gid": gid})

    async def move(self, shard: int, gid: int) -> None:
        await self._call(SM_MOVE, {"shard": shard, "gid": gid})

    async def query(self, num: int = -1) -> Config:
        reply = await self._call(SM_QUERY, {"num": num})
        return Config.from_wire(reply["config"])

    async def query_applied_anywhere(self, num: int) -> Config | None:
        """Config `num` if any shardmaster has already applied it, asking all at once.

        Cheaper than `query` (no agreement) but possibly stale at any one replica; asking
        every replica finds a config as soon as a majority has decided it. None if nobody
        has it yet or nobody answered.
        """
        found: list[Config] = []

        async def ask(address: str) -> None:
            try:
                reply = await self._pool.call(
                    address, SM_QUERY_APPLIED, {"num": num}, deadline_s=CALL_DEADLINE_S
                )
                found.append(Config.from_wire(reply["config"]))
            except (NetError, ValueError, KeyError):
                return

        async with trio.open_nursery() as nursery:
            for address in self.masters:
                nursery.start_soon(ask, address)
        matching = [c for c in found if c.num == num]
        return matching[0] if matching else None
