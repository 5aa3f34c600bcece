"""The crash session's clients over the Redis protocol: the same checks, through the gateway.

`python -m tools.crash --via resp` puts a `RespGateway` (in the session's process, on its
own native `Client`, AUTH with the client key) in front of the cluster, and every workload
client speaks RESP to it over loopback TCP. Each reply is recorded as an op of the
checker's model (`record_of`):

- GET: a get (nil: absent, an empty bulk: the empty value). SET: a put; ``SET k ""`` is
  issued too, so absent and empty stay apart through the gateway.
- APPEND: an append (its reply, the new length, is not part of the model).
- DEL (one key): a delete, 1 / 0 as existed or not.
- SET NX: a compare-and-set from absent, OK / nil as wrote or not.
- SET XX: OK is a put (the model has no "write if present", so this is weaker than the
  command); nil means the key was absent and nothing was written: a get of absent.
- SET XX GET: the old value it answers makes it an exact compare-and-set from that value;
  nil is a get of absent.
- An error reply (the gateway's TIMEOUT, a refused call, TRYAGAIN), a client-side timeout or
  a lost connection: an unknown outcome of the write it would have been (any SET variant: a
  put of its value, which covers "wrote it, or not"), exactly as the native workload records
  a timeout. After a timeout or a lost connection the client reconnects, so a late reply
  is never read as another command's.

Why a small Trio client on hiredis's `Reader` rather than redis-py's asyncio client in a
thread: the session stays one Trio run, so a per-op timeout is a cancel scope, as in the
native workload; call and return times are taken in the same task as the I/O, on the
history's clock, with no cross-loop hand-off between them; the recorder needs no locking.
Replies are parsed by hiredis, the parser redis-py itself uses; the encoder is one line.

Since what a SET XX was (a put or a get) is known only from its reply, each op is recorded
after it returns, with its call and return times pinned on the recorder's clock
(`PinnableClock`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import hiredis
import trio

from diskv_trio.client import connect
from diskv_trio.net import Credentials
from diskv_trio.resp import COMMAND_DEADLINE_S, RespGateway
from diskv_trio.resp._password import client_key_password
from diskv_trio.testing.linearizability import HistoryRecorder

from ._events import Timeline
from ._workload import THINK_S_MAX, Kind, WorkloadStats

GATEWAY_DEADLINE_S = 4.0
"""The gateway's command deadline here, shorter than its default (`COMMAND_DEADLINE_S`), so
paused or cut-off leaders produce TIMEOUT replies whose writes may still take effect later:
the unknown outcomes the check must allow, through the gateway's own path."""

OP_TIMEOUT_S = GATEWAY_DEADLINE_S + 4.0
"""Past this a command counts as an unknown outcome on the client side (the gateway answers
TIMEOUT before, unless it or the connection is stuck)."""

assert GATEWAY_DEADLINE_S < min(COMMAND_DEADLINE_S, OP_TIMEOUT_S)

RECONNECT_PAUSE_S = 0.2
"""Pause before a client reconnects after failing to connect."""

RECEIVE_BYTES = 64 * 1024

COMMAND_WEIGHTS: dict[str, float] = {
    "get": 0.30,
    "append": 0.32,
    "set": 0.07,
    "set-empty": 0.02,
    "del": 0.07,
    "set-nx": 0.08,
    "set-xx": 0.07,
    "set-xx-get": 0.07,
}
"""Mostly gets and appends (a lost or doubled append stays visible); deletes are common
enough that SET NX often finds the key absent and writes."""


VALUE_PREFIX = {"set": "s", "set-nx": "n", "set-xx": "x", "set-xx-get": "g"}
"""Values are unique (client and count); the prefix tells which command wrote one."""


class PinnableClock:
    """The history's clock (`time.monotonic`), which can be pinned to a past instant while
    an op that already returned is recorded with its real call and return times."""

    def __init__(self) -> None:
        self._pinned: float | None = None

    def __call__(self) -> float:
        return time.monotonic() if self._pinned is None else self._pinned

    @contextmanager
    def pinned(self, at: float) -> Iterator[None]:
        self._pinned = at
        try:
            yield
        finally:
            self._pinned = None


@dataclass(frozen=True, slots=True)
class Record:
    """One op of the checker's model; `unknown`: the outcome is unknown (no `output`)."""

    kind: Kind
    value: str | None
    output: str | bool | None = None
    expected: str | None = None
    unknown: bool = False


class UnexpectedReply(Exception):
    """A reply of a shape the command never answers: a gateway bug, the session fails."""


def words_of(command: str, key: str, value: str) -> list[bytes]:
    """The RESP command words of workload `command` on `key` with `value` ("" for set-empty)."""
    k, v = key.encode(), value.encode()
    return {
        "get": [b"GET", k],
        "set": [b"SET", k, v],
        "set-empty": [b"SET", k, v],
        "append": [b"APPEND", k, v],
        "del": [b"DEL", k],
        "set-nx": [b"SET", k, v, b"NX"],
        "set-xx": [b"SET", k, v, b"XX"],
        "set-xx-get": [b"SET", k, v, b"XX", b"GET"],
    }[command]


def encode_command(words: Sequence[bytes]) -> bytes:
    """A RESP array of bulk strings, as every Redis client sends a command."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def unknown_record(command: str, value: str) -> Record:
    """The op `command` may have been, applied or not (a timeout, an error, a lost connection)."""
    if command == "get":
        return Record("get", None, unknown=True)
    if command == "del":
        return Record("delete", None, unknown=True)
    if command == "append":
        return Record("append", value, unknown=True)
    if command == "set-nx":
        return Record("cas", value, expected=None, unknown=True)
    return Record("put", value, unknown=True)


def record_of(command: str, value: str, reply: object) -> Record:
    """The model op that `reply` to `command` shows happened (see the module docstring).

    Raises:
        UnexpectedReply: `reply` is not a shape `command` answers.
    """
    if isinstance(reply, hiredis.ReplyError):
        return unknown_record(command, value)
    if command == "get" and (reply is None or isinstance(reply, bytes)):
        return Record("get", None, output=_text(reply))
    if command in ("set", "set-empty") and reply == b"OK":
        return Record("put", value)
    if command == "append" and isinstance(reply, int) and reply >= len(value.encode()):
        return Record("append", value)
    if command == "del" and reply in (0, 1):
        return Record("delete", None, output=reply == 1)
    if command == "set-nx" and reply in (b"OK", None):
        return Record("cas", value, output=reply == b"OK", expected=None)
    if command in ("set-xx", "set-xx-get") and reply is None:
        return Record("get", None, output=None)
    if command == "set-xx" and reply == b"OK":
        return Record("put", value)
    if command == "set-xx-get" and isinstance(reply, bytes):
        return Record("cas", value, output=True, expected=_text(reply))
    raise UnexpectedReply(f"{command} answered {reply!r}")


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "surrogateescape")


class ConnectionLost(Exception):
    """The gateway closed the connection before a whole reply arrived."""


class RespConnection:
    """One RESP connection: commands encoded here, replies parsed by hiredis's `Reader`."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = hiredis.Reader()

    @classmethod
    async def open(cls, port: int, password: bytes | None) -> RespConnection:
        """Connect to the gateway on loopback `port` and AUTH with `password` if given.

        Raises:
            OSError: no connection.
            ConnectionLost: AUTH was refused or not answered.
        """
        connection = cls(await trio.open_tcp_stream("127.0.0.1", port))
        if password is not None:
            reply = await connection.call([b"AUTH", password])
            if reply != b"OK":
                await connection.stream.aclose()
                raise ConnectionLost(f"AUTH answered {reply!r}")
        return connection

    async def call(self, words: Sequence[bytes]) -> object:
        """Send one command and return its reply (an error reply is a `hiredis.ReplyError`)."""
        await self.stream.send_all(encode_command(words))
        while (reply := self.reader.gets()) is False:
            data = await self.stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise ConnectionLost("the gateway closed the connection")
            self.reader.feed(data)
        return reply

    async def aclose(self) -> None:
        await self.stream.aclose()


class RespWorkload:
    """Runs a gateway and `clients` concurrent RESP clients until `stop`; records into `recorder`.

    Args:
        masters, cluster_name, credentials: how the gateway reaches the cluster.
        recorder: the session's history recorder, built on `clock`.
        clock: the recorder's clock, pinned while a returned op is recorded.
        timeline: where an unexpected reply is reported as a problem.
        seed, clients, keys: as for the native `Workload`.
    """

    def __init__(
        self,
        masters: list[str],
        cluster_name: str,
        recorder: HistoryRecorder,
        clock: PinnableClock,
        timeline: Timeline,
        *,
        seed: int,
        clients: int,
        keys: list[str],
        credentials: Credentials | None = None,
    ) -> None:
        self.masters = masters
        self.cluster_name = cluster_name
        self.credentials = credentials
        self.password = client_key_password(credentials) if credentials is not None else None
        self.recorder = recorder
        self.clock = clock
        self.timeline = timeline
        self.seed = seed
        self.clients = clients
        self.keys = keys
        self.stats = WorkloadStats()
        self.gateway: RespGateway | None = None
        self._port = 0
        self._stop = trio.Event()

    def stop(self) -> None:
        """Ask every client to finish its current command and return; the gateway then stops."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with connect(
            self.masters, cluster=self.cluster_name, credentials=self.credentials
        ) as kv:
            self.gateway = RespGateway(
                kv, password=self.password, command_deadline_s=GATEWAY_DEADLINE_S
            )
            async with trio.open_nursery() as serving:
                self._port = await serving.start(self.gateway.serve, "127.0.0.1", 0)
                async with trio.open_nursery() as clients:
                    for index in range(self.clients):
                        await clients.start(self._client, index)
                    task_status.started()
                stats = self.gateway.stats
                self.timeline.note(
                    f"RESP gateway: {stats.commands_total} commands, {stats.error_replies} "
                    f"error replies, {stats.connections_total} connections"
                )
                serving.cancel_scope.cancel()

    async def _client(self, index: int, *, task_status: trio.TaskStatus[None]) -> None:
        rng = random.Random(f"{self.seed}-resp-client-{index}")
        connection: RespConnection | None = None
        task_status.started()
        count = 0
        try:
            while not self._stop.is_set():
                if connection is None:
                    connection = await self._connect()
                    if connection is None:
                        continue
                count += 1
                key = rng.choice(self.keys)
                command = rng.choices(list(COMMAND_WEIGHTS), list(COMMAND_WEIGHTS.values()))[0]
                value = (
                    ""
                    if command == "set-empty"
                    else f"{VALUE_PREFIX.get(command, '')}{index}.{count};"
                )
                if not await self.run_command(connection, index, command, key, value):
                    await connection.aclose()
                    connection = None
                with trio.move_on_after(rng.uniform(0, THINK_S_MAX)):
                    await self._stop.wait()
        finally:
            if connection is not None:
                with trio.CancelScope(shield=True):
                    await connection.aclose()

    async def _connect(self) -> RespConnection | None:
        try:
            with trio.fail_after(OP_TIMEOUT_S):
                return await RespConnection.open(self._port, self.password)
        except (OSError, ConnectionLost, trio.TooSlowError, trio.BrokenResourceError):
            with trio.move_on_after(RECONNECT_PAUSE_S):
                await self._stop.wait()
            return None

    async def run_command(
        self, connection: RespConnection, index: int, command: str, key: str, value: str
    ) -> bool:
        """Run one command and record it; False if the connection must be dropped."""
        called = self.clock()
        reply: object = None
        answered = False
        try:
            with trio.move_on_after(OP_TIMEOUT_S):
                reply = await connection.call(words_of(command, key, value))
                answered = True
        except (ConnectionLost, OSError, trio.BrokenResourceError, hiredis.ProtocolError):
            pass
        except BaseException:
            self._record(index, key, unknown_record(command, value), called, None)
            raise
        returned = self.clock()
        if not answered:
            record = unknown_record(command, value)
        else:
            try:
                record = record_of(command, value, reply)
            except UnexpectedReply as exc:
                self.timeline.problem(f"RESP client {index}: {exc}")
                record = unknown_record(command, value)
        self._record(index, key, record, called, returned)
        (self.stats.unknown if record.unknown else self.stats.ok)[command] += 1
        return answered

    def _record(
        self, index: int, key: str, record: Record, called: float, returned: float | None
    ) -> None:
        with self.clock.pinned(called):
            token = self.recorder.record_call(
                index, record.kind, key, record.value, record.expected
            )
        if record.unknown or returned is None:
            self.recorder.record_unknown(token)
            return
        with self.clock.pinned(returned):
            self.recorder.record_return(token, record.output)
