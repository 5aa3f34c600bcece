"""Hostile CBOR in client requests, against real server processes.

An authenticated client sends `kv.op` to a replica and `sm.query` to a shardmaster with
values no legitimate client builds: nesting 31 to 33 levels deep (the limit is
`WIRE_DEPTH_MAX` = 32 for the whole frame), shared references (tags 28/29, cyclic and a
DAG), bignums, indefinite lengths, 2 MiB of empty arrays, thousands of map keys, bad UTF-8,
lengths far past the end of the frame. Each is answered within two seconds, either with a
clear error (a value that decodes but is not a valid argument: the connection stays
usable) or with a protocol error frame after which the server closes the connection.
Afterwards both servers keep serving, and a SIGKILL and restart of each shows nothing
hostile reached their journals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cbor2
import pytest
import trio

from diskv_trio.net import Role
from diskv_trio.net._limits import CLIENT_FRAME_BYTES_MAX, CLIENT_FRAME_ITEMS_MAX, WIRE_DEPTH_MAX
from tests.security.harness import CLUSTER_NAME, SharedCluster, replica_get
from tests.security.raw import body_frame, open_authenticated

pytestmark = pytest.mark.slow

ANSWER_WITHIN_S = 2.0
KEY = "hostile-values-key"
BAD_REQUEST = "ErrBadRequest"
CLOSED = "closed"


def nested(levels: int) -> bytes:
    """`levels` one-element arrays around a short string."""
    return b"\x81" * levels + cbor2.dumps("x")


def request_body(method: str, args_items: list[tuple[str, bytes]]) -> bytes:
    """``{i: 1, m: method, a: {name: raw CBOR, ...}}`` with each argument's bytes as given."""
    assert len(args_items) < 24
    args = bytes([0xA0 + len(args_items)]) + b"".join(cbor2.dumps(name) + raw for name, raw in args_items)
    return b"\xa3" + cbor2.dumps("i") + cbor2.dumps(1) + cbor2.dumps("m") + cbor2.dumps(method) + cbor2.dumps("a") + args


def put_with(value: bytes) -> bytes:
    """A `kv.op` put whose value is the raw CBOR `value` (frame map + args map = 2 levels)."""
    return request_body(
        "kv.op",
        [
            ("op", cbor2.dumps("put")),
            ("key", cbor2.dumps(KEY)),
            ("value", value),
            ("client", cbor2.dumps("intruder")),
            ("seq", cbor2.dumps(1)),
        ],
    )


def query_with(num: bytes) -> bytes:
    """An `sm.query` whose `num` is the raw CBOR `num`."""
    return request_body("sm.query", [("num", num)])


def int_keyed_map(count: int) -> bytes:
    return cbor2.dumps({n: n for n in range(count)})


EMPTY_ARRAYS = 2 * 1024 * 1024
TWO_MIB_OF_EMPTY_ARRAYS = b"\x9a" + EMPTY_ARRAYS.to_bytes(4, "big") + b"\x80" * EMPTY_ARRAYS


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    outcome: str  # BAD_REQUEST or CLOSED
    says: str = ""  # text the closing error frame carries


VALUES = [
    # Depth counts every container of the frame: the frame map and the args map are two.
    Case("depth-31", nested(31 - 2), BAD_REQUEST),
    Case("depth-32", nested(WIRE_DEPTH_MAX - 2), BAD_REQUEST),
    Case("depth-33", nested(33 - 2), CLOSED, "nesting depth"),
    Case("shared-reference-cycle", bytes.fromhex("d81c81d81d00"), CLOSED, "tags are not accepted"),
    Case("shared-reference-dag", bytes.fromhex("82d81c6173d81d00"), CLOSED, "tags are not accepted"),
    Case("bignum", bytes.fromhex("c249") + b"\x01" * 9, CLOSED, "tags are not accepted"),
    Case("negative-bignum", bytes.fromhex("c349") + b"\xff" * 9, CLOSED, "tags are not accepted"),
    Case("self-described", bytes.fromhex("d9d9f76161"), CLOSED, "tags are not accepted"),
    Case("indefinite-array", bytes.fromhex("9f6161ff"), CLOSED, "indefinite"),
    Case("indefinite-text", bytes.fromhex("7f6161ff"), CLOSED, "indefinite"),
    Case("2-mib-of-empty-arrays", TWO_MIB_OF_EMPTY_ARRAYS, CLOSED, f"{CLIENT_FRAME_ITEMS_MAX} CBOR items"),
    Case("5000-int-keys", int_keyed_map(5000), CLOSED, f"{CLIENT_FRAME_ITEMS_MAX} CBOR items"),
    Case("colliding-int-keys", cbor2.dumps({n * (2**61 - 1): 0 for n in range(3000)}), CLOSED, "CBOR items"),
    Case("bad-utf8", bytes.fromhex("62eda0"), CLOSED, "not valid CBOR"),
    Case("text-longer-than-frame", bytes.fromhex("7bffffffffffffffff"), CLOSED, "not valid CBOR"),
    Case("array-longer-than-frame", bytes.fromhex("9bffffffffffffffff"), CLOSED, "CBOR items"),
    Case("undefined", bytes.fromhex("f7"), BAD_REQUEST),
    Case("nan", bytes.fromhex("f97e00"), BAD_REQUEST),
    Case("uint64-max", bytes.fromhex("1bffffffffffffffff"), BAD_REQUEST),
]


async def assert_answer(shared: SharedCluster, name: str, body: bytes, case: Case) -> None:
    follow_up = ("kv.op", {"op": "get", "key": KEY}) if name in shared.replicas else ("sm.query", {"num": -1})
    key = shared.key(Role.CLIENT)
    async with open_authenticated(shared.address(name), CLUSTER_NAME, Role.CLIENT, key) as raw:
        started = time.monotonic()
        sent = await raw.send_bytes(body_frame(body))
        assert sent or case.outcome == CLOSED
        with trio.fail_after(ANSWER_WITHIN_S):
            if case.outcome == BAD_REQUEST:
                reply = await raw.receive()
            else:
                frames = await raw.frames_until_closed()
        elapsed = time.monotonic() - started
        if case.outcome == BAD_REQUEST:
            assert reply is not None and reply["i"] == 1, reply
            assert reply["e"]["code"] == BAD_REQUEST, reply
            with trio.fail_after(10):
                again = await raw.call(*follow_up)
            assert again is not None and "r" in again, again
        else:
            assert len(frames) == 1, frames
            error = frames[0]["e"]
            assert error["code"] == "protocol", frames
            assert case.says in error["message"], error
    assert elapsed < ANSWER_WITHIN_S, elapsed
    shared.assert_every_server_alive()


@pytest.mark.parametrize("case", VALUES, ids=lambda case: case.name)
async def test_a_hostile_put_value_gets_a_clear_answer_quickly(shared: SharedCluster, case: Case) -> None:
    await assert_answer(shared, shared.replicas[0], put_with(case.raw), case)


@pytest.mark.parametrize("case", VALUES, ids=lambda case: case.name)
async def test_a_hostile_query_number_gets_a_clear_answer_quickly(shared: SharedCluster, case: Case) -> None:
    await assert_answer(shared, shared.masters[0], query_with(case.raw), case)


@pytest.mark.parametrize("server", ["replica", "shardmaster"])
async def test_a_frame_longer_than_a_client_may_send_closes_at_its_length(
    shared: SharedCluster, server: str
) -> None:
    """Only the length prefix is sent: the server closes without waiting for the body."""
    name = shared.replicas[0] if server == "replica" else shared.masters[0]
    case = Case("oversized", b"", CLOSED, f"exceeds the limit of {CLIENT_FRAME_BYTES_MAX} bytes")
    async with open_authenticated(shared.address(name), CLUSTER_NAME, Role.CLIENT, shared.key(Role.CLIENT)) as raw:
        await raw.send_bytes((CLIENT_FRAME_BYTES_MAX + 1).to_bytes(4, "big"))
        with trio.fail_after(ANSWER_WITHIN_S):
            frames = await raw.frames_until_closed()
    assert [frame["e"]["code"] for frame in frames] == ["protocol"]
    assert case.says in frames[0]["e"]["message"]
    shared.assert_every_server_alive()


async def test_the_attacked_servers_serve_and_restart_after_hostile_values(shared: SharedCluster) -> None:
    """SIGKILL the attacked replica and shardmaster, restart both: each serves again from its
    journal, and a legitimate client reads everything acknowledged."""
    async with shared.client() as kv:
        await shared.put_acknowledged(kv, KEY, "legitimate")
    replica, master = shared.replicas[0], shared.masters[0]
    await shared.kill_and_restart(replica)
    await shared.kill_and_restart(master)
    async with shared.pool(Role.CLIENT) as pool:
        with trio.fail_after(30):
            assert await replica_get(pool, shared.address(replica), KEY) == "legitimate"
            reply = await pool.call(shared.address(master), "sm.query", {"num": -1}, deadline_s=10)
        assert set(reply["config"]["groups"]) == {shared.gid}
    await shared.check_unharmed(forged=[(KEY, "x")], marker="hostile-values")
