"""The async client: Get / Put / Append with retries across groups and replicas.

Rules kept here:
- Each concurrent operation runs in a *session* (client id, sequence number); a session
  has one operation outstanding at a time, and a retry reuses the same id and number,
  so the servers apply a Put or Append at most once however often it is sent.
- The shard -> group map comes from a cached configuration, refreshed when a group
  answers ErrWrongGroup or no replica of the owning group answers.
- The client never gives up on its own: bound a call with a Trio cancel scope
  (`with trio.fail_after(5): await kv.get(k)`). A cancelled Put or Append may still
  take effect later, as with any store.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from diskv_trio._discovery import find_cluster_name, find_credentials, find_masters
from diskv_trio.net import (
    Credentials,
    Identity,
    Role,
    RpcPool,
    RpcRemoteError,
    RpcUnavailable,
    open_rpc_pool,
)
from diskv_trio.shardkv import key_to_shard
from diskv_trio.shardmaster import Config, ShardmasterClerk

KEY_BYTES_MAX = 4096
"""Longest key accepted (UTF-8 bytes): keys are kept in memory and in every snapshot."""

VALUE_BYTES_MAX = 16 * 1024 * 1024
"""Largest value accepted (UTF-8 bytes): a value travels in one frame and one log entry."""

KV_CALL_DEADLINE_S = 2.0
"""One attempt at one replica; a replica that cannot reach its majority is left after this."""

ROUND_PAUSE_S = 0.1
"""Pause after a round in which no replica of the owning group answered."""


class DiskvError(Exception):
    """Base of the errors the client raises."""


class InvalidRequestError(DiskvError, ValueError):
    """Raised for a key or value the store does not accept (type, size)."""


class RejectedError(DiskvError):
    """Raised when a server rejects a request as malformed (a client/server version mismatch)."""


@dataclass
class _Session:
    client_id: str
    next_seq: int = 1


def _check_text(name: str, text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidRequestError(f"{name} must be str, not {type(text).__name__}")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidRequestError(f"{name} is {size} bytes; the limit is {limit}")
    return text


class Client:
    """A handle on the store; safe to use from many tasks at once."""

    def __init__(self, masters: Sequence[str], pool: RpcPool) -> None:
        self._pool = pool
        self._masters = ShardmasterClerk(masters, pool)
        self._config = Config.initial()
        self._free_sessions: list[_Session] = []
        self._preferred: dict[int, int] = {}

    async def get(self, key: str) -> str:
        """The value of `key` ("" if it was never written)."""
        reply = await self._run({"op": "get", "key": _check_text("key", key, KEY_BYTES_MAX)})
        return str(reply.get("value", ""))

    async def put(self, key: str, value: str) -> None:
        """Set `key` to `value`."""
        await self._run(
            {
                "op": "put",
                "key": _check_text("key", key, KEY_BYTES_MAX),
                "value": _check_text("value", value, VALUE_BYTES_MAX),
            }
        )

    async def append(self, key: str, value: str) -> None:
        """Append `value` to the value of `key`."""
        await self._run(
            {
                "op": "append",
                "key": _check_text("key", key, KEY_BYTES_MAX),
                "value": _check_text("value", value, VALUE_BYTES_MAX),
            }
        )

    async def config(self) -> Config:
        """The latest configuration (and refresh the cached one)."""
        self._config = await self._masters.query(-1)
        return self._config

    @property
    def shardmasters(self) -> ShardmasterClerk:
        return self._masters

    async def _run(self, op: dict[str, Any]) -> dict[str, Any]:
        session = self._free_sessions.pop() if self._free_sessions else _Session(os.urandom(12).hex())
        op = op | {"client": session.client_id, "seq": session.next_seq}
        session.next_seq += 1
        try:
            reply = await self._send(op)
        finally:
            # Reusing a session after a cancelled op is safe: the next op has a higher
            # sequence number, so the abandoned one can no longer be applied after it.
            self._free_sessions.append(session)
        return reply

    async def _send(self, op: dict[str, Any]) -> dict[str, Any]:
        shard = key_to_shard(op["key"])
        while True:
            gid = self._config.shards[shard]
            servers = self._config.groups.get(gid, ())
            if gid != 0 and servers:
                start = self._preferred.get(gid, 0)
                for offset in range(len(servers)):
                    index = (start + offset) % len(servers)
                    try:
                        reply = await self._pool.call(
                            servers[index], "kv.op", op, deadline_s=KV_CALL_DEADLINE_S
                        )
                    except RpcUnavailable:
                        continue
                    except RpcRemoteError as exc:
                        if exc.code in ("ErrBadRequest", "ErrBadOp", "forbidden"):
                            raise RejectedError(f"{exc.code}: {exc.message}") from exc
                        continue
                    err = reply.get("err")
                    if err == "OK":
                        self._preferred[gid] = index
                        return reply
                    if err == "ErrWrongGroup":
                        break
            await trio.sleep(ROUND_PAUSE_S)
            self._config = await self._masters.query(-1)


@asynccontextmanager
async def connect(
    masters: Sequence[str] | str | None = None,
    *,
    cluster: str | None = None,
    credentials: Credentials | Path | None = None,
) -> AsyncIterator[Client]:
    """Open a client on the cluster whose shardmasters are `masters`.

    Without `masters`, `DISKV_MASTERS` is used, else the local cluster that `diskv cluster up`
    runs from the current directory. The cluster name (checked by every server) defaults to
    the local cluster's, else "diskv". The client key comes from `credentials` (keys, or a
    credentials directory), else `DISKV_CREDENTIALS`, else the local cluster's folder.

    Raises:
        DiscoveryError: no shardmasters could be found.
        CredentialsError: a credentials directory was named but cannot be used.
    """
    addresses = find_masters(masters)
    name = cluster or find_cluster_name()
    keys = credentials if isinstance(credentials, Credentials) else find_credentials(credentials)
    identity = Identity(name, Role.CLIENT, "client-" + os.urandom(6).hex())
    async with open_rpc_pool(identity, credentials=keys) as pool:
        yield Client(addresses, pool)
