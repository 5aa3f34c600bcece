"""The Trio client: Get / Put / Append / Delete / compare-and-set, retried across replicas.

Rules kept here:
- Each concurrent operation runs in a *session* (client id, sequence number); a session
  has one operation outstanding at a time, and a retry reuses the same id and number,
  so the servers apply a write (Put, Append, Delete, compare-and-set) at most once however
  often it is sent, and answer a retry with the first result.
- Keys and values are bytes on the wire; text is encoded as UTF-8 here. What is sent is a
  `diskv_trio.kvproto` op, checked against its limits before anything is sent.
- The shard -> group map comes from a cached configuration, refreshed when a group
  answers ErrWrongGroup or no replica of the owning group answers.
- The client never gives up on its own: bound a call with a Trio cancel scope
  (`with trio.fail_after(5): await kv.get(k)`). A cancelled write may still take effect
  later, as with any store. `diskv_trio.connect_blocking` and `connect_asyncio` offer the
  same client to blocking and asyncio code.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from diskv_trio import _entropy
from diskv_trio._discovery import find_cluster_name, find_credentials, find_masters
from diskv_trio._waits import WaitCause, WaitTracker, fail_after
from diskv_trio.kvproto import (
    KEY_BYTES_MAX,
    KV_OP,
    REDIRECT,
    REJECTIONS,
    VALUE_BYTES_MAX,
    Append,
    Cas,
    ClientOp,
    Code,
    Delete,
    Get,
    Put,
    as_bytes,
    flag_result,
    get_result,
    leader_hint,
)
from diskv_trio.net import (
    Credentials,
    Identity,
    Role,
    RpcPool,
    RpcRemoteError,
    RpcUnavailable,
    open_rpc_pool,
    tls_for_client_context,
)
from diskv_trio.shardmaster import Config, ShardmasterClerk

__all__ = [
    "KEY_BYTES_MAX",
    "VALUE_BYTES_MAX",
    "Client",
    "DiskvError",
    "InvalidRequestError",
    "Key",
    "RejectedError",
    "Value",
    "connect",
]

Key = bytes | str
"""A key: bytes, or text (stored as its UTF-8 bytes)."""

Value = bytes | str
"""A value: bytes, or text (stored as its UTF-8 bytes); reads always give bytes."""

KV_CALL_DEADLINE_S = 2.0
"""One attempt at one replica; a replica that cannot reach its majority is left after this."""

ROUND_PAUSE_S = 0.1
"""Pause after a round in which no replica of the owning group answered."""


class DiskvError(Exception):
    """Base of the errors the client raises."""


class InvalidRequestError(DiskvError, ValueError):
    """Raised for a key or value the store does not accept (type, size); nothing was sent."""


class RejectedError(DiskvError):
    """Raised when a server rejects a request as malformed (a client/server version mismatch)
    or as not allowed for the client's role."""


@dataclass
class _Session:
    client_id: str
    next_seq: int = 1


def _checked(name: str, value: object, limit: int) -> bytes:
    try:
        return as_bytes(value, name, limit)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _key(key: object) -> bytes:
    return _checked("key", key, KEY_BYTES_MAX)


def _value(value: object, name: str = "value") -> bytes:
    return _checked(name, value, VALUE_BYTES_MAX)


class Client:
    """A handle on the store; safe to use from many tasks at once.

    Keys and values may be given as bytes or text (UTF-8); values come back as bytes, and a
    missing key reads as None, never as an empty value. Every write is applied at most once.
    """

    def __init__(self, masters: Sequence[str], pool: RpcPool) -> None:
        self._pool = pool
        self._masters = ShardmasterClerk(masters, pool)
        self._config = Config.initial()
        self._free_sessions: list[_Session] = []
        self._preferred: dict[int, int] = {}
        self._waits = WaitTracker()

    async def get(self, key: Key) -> bytes | None:
        """The value of `key`, or None if it is absent (never written, or deleted)."""
        reply = await self._send(Get(_key(key)))
        return _result(get_result, reply)

    async def get_text(self, key: Key, encoding: str = "utf-8") -> str | None:
        """The value of `key` decoded as text, or None if it is absent.

        Raises:
            UnicodeDecodeError: the value is not text in `encoding`.
        """
        value = await self.get(key)
        return None if value is None else value.decode(encoding)

    async def put(self, key: Key, value: Value) -> None:
        """Set `key` to `value`."""
        key, data = _key(key), _value(value)
        await self._write(lambda client, seq: Put(key, data, client, seq))

    async def append(self, key: Key, value: Value) -> None:
        """Append `value` to the value of `key` (an absent key starts empty)."""
        key, data = _key(key), _value(value)
        await self._write(lambda client, seq: Append(key, data, client, seq))

    async def delete(self, key: Key) -> bool:
        """Remove `key`; True if it existed."""
        key = _key(key)
        reply = await self._write(lambda client, seq: Delete(key, client, seq))
        return _result(flag_result, reply, "existed")

    async def cas(self, key: Key, expected: Value | None, new: Value) -> bool:
        """Set `key` to `new` if its value is `expected` (None: if `key` is absent).

        Returns:
            True if it wrote, False if the value was something else.
        """
        key, data = _key(key), _value(new, "new value")
        want = None if expected is None else _value(expected, "expected value")
        try:
            Cas(key, want, data, "size-check", 0)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        reply = await self._write(lambda client, seq: Cas(key, want, data, client, seq))
        return _result(flag_result, reply, "written")

    async def config(self) -> Config:
        """The latest configuration (and refresh the cached one)."""
        self._config = await self._masters.query(-1)
        return self._config

    @property
    def shardmasters(self) -> ShardmasterClerk:
        return self._masters

    @property
    def last_wait(self) -> WaitCause | None:
        """Why the latest retry happened (None once a call went through without one)."""
        return self._waits.last

    def fail_after(self, seconds: float) -> AbstractContextManager[trio.CancelScope]:
        """`trio.fail_after` whose error says what the client was waiting for.

        Raises:
            WaitTimeoutError: (a `trio.TooSlowError`) the block took longer than `seconds`.
        """
        return fail_after(seconds, self._waits)

    async def _write(self, make: Any) -> dict[str, Any]:
        session = self._free_sessions.pop() if self._free_sessions else _Session(_entropy.token_hex(12))
        op = make(session.client_id, session.next_seq)
        session.next_seq += 1
        try:
            return await self._send(op)
        finally:
            # Reusing a session after a cancelled op is safe: the next op has a higher
            # sequence number, so the abandoned one can no longer be applied after it.
            self._free_sessions.append(session)

    async def _send(self, op: ClientOp) -> dict[str, Any]:
        # We follow ErrNotLeader's hint ourselves; after a round in which the leader did not
        # answer us, replicas forward for us (one that cannot reach it either runs for it).
        wire = op.to_wire() | {REDIRECT: True}
        waits = self._waits
        while True:
            config = self._config
            shard = config.shard_of(op.key)
            gid = config.shards[shard]
            servers = config.groups.get(gid, ())
            if gid != 0 and servers:
                queue = deque(_order(self._preferred.get(gid, 0), len(servers)))
                tried: set[int] = set()
                while queue:
                    index = queue.popleft()
                    if index in tried:
                        continue
                    tried.add(index)
                    try:
                        reply = await self._pool.call(servers[index], KV_OP, wire, deadline_s=KV_CALL_DEADLINE_S)
                    except RpcUnavailable as exc:
                        waits.note(f"group {gid} (shard {shard}): {servers[index]} does not answer ({exc})")
                        continue
                    except RpcRemoteError as exc:
                        if exc.code in REJECTIONS:
                            raise RejectedError(f"{exc.code}: {exc.message}") from exc
                        waits.note(f"group {gid} (shard {shard}): {servers[index]} answered {exc.code}: {exc.message}")
                        hint = leader_hint(exc.message, len(servers)) if exc.code == Code.NOT_LEADER else None
                        if hint is not None:
                            queue.appendleft(hint)  # the group's leader, as that replica believes
                        continue
                    err = reply.get("err")
                    if err in (Code.OK, Code.NO_KEY):
                        self._preferred[gid] = index
                        waits.clear()
                        return reply
                    if err == Code.WRONG_GROUP:
                        waits.note(
                            f"shard {shard} is not served by group {gid} yet (configuration "
                            f"{config.num}: in transfer, or a newer configuration moved it)"
                        )
                        break
                    waits.note(f"group {gid} (shard {shard}): {servers[index]} answered {err}")
            elif config.num > 0:
                waits.note(f"shard {shard} belongs to no group in configuration {config.num} (no group joined)")
            wire = op.to_wire()
            await trio.sleep(ROUND_PAUSE_S)
            if waits.last is None:
                waits.note(f"waiting for a shardmaster to answer (at {', '.join(self._masters.masters)})")
            self._config = await self._masters.query(-1)


def _order(start: int, count: int) -> list[int]:
    return [(start + offset) % count for offset in range(count)]


def _result(read: Any, reply: dict[str, Any], *args: str) -> Any:
    try:
        return read(reply, *args)
    except ValueError as exc:
        raise RejectedError(f"unexpected reply from the server: {exc}") from None


@asynccontextmanager
async def connect(
    masters: Sequence[str] | str | None = None,
    *,
    cluster: str | None = None,
    credentials: Credentials | Path | None = None,
    role: Role = Role.CLIENT,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Client]:
    """Open a client on the cluster whose shardmasters are `masters`.

    Without `masters`, `DISKV_MASTERS` is used, else the local cluster that `diskv cluster up`
    runs from the current directory. The cluster name (checked by every server) defaults to
    the local cluster's, else "diskv". The client key comes from `credentials` (keys, or a
    credentials directory), else `DISKV_CREDENTIALS`, else the local cluster's folder.
    `role=Role.OPERATOR` (with the operator key) also lets `shardmasters` change the
    configuration (join, leave, move).

    Every connection is TLS when `ssl_context` is given (it verifies the servers; load a
    certificate into it only for the operator role), else when `credentials` carry TLS
    settings, else when `DISKV_TLS_DIR` or the local cluster (`cluster up --tls`) names a
    TLS directory.

    Raises:
        DiscoveryError: no shardmasters could be found.
        CredentialsError: a credentials directory was named but cannot be used.
    """
    addresses = find_masters(masters)
    name = cluster or find_cluster_name()
    keys = credentials if isinstance(credentials, Credentials) else find_credentials(credentials)
    if ssl_context is not None:
        keys = Credentials(keys.keys if keys else {}, tls=tls_for_client_context(ssl_context))
    identity = Identity(name, role, f"{role.value}-" + _entropy.token_hex(6))
    async with open_rpc_pool(identity, credentials=keys) as pool:
        yield Client(addresses, pool)
