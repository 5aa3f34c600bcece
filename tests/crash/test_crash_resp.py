"""Crash sessions whose clients speak RESP through the gateway (`python -m tools.crash --via resp`).

How each reply becomes an op of the checker's model is checked without a cluster; one short
session (about 30 s: processes, kills with and without disk loss, pauses, cuts, moves) must
pass every check, and its real history with one acknowledged SET dropped must be ILLEGAL:
the check sees what the gateway's clients saw.
"""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import hiredis
import pytest
import trio

from diskv_trio.resp import RespGateway
from diskv_trio.testing.linearizability import (
    HistoryRecorder,
    Operation,
    Verdict,
    check_history,
    load_history,
)
from tests.resp.memory_store import MemoryStore
from tools.crash import CrashOptions, print_failed_run_files, run_crash
from tools.crash._events import Timeline
from tools.crash._resp import (
    GATEWAY_DEADLINE_S,
    OP_TIMEOUT_S,
    PinnableClock,
    Record,
    RespConnection,
    RespWorkload,
    UnexpectedReply,
    encode_command,
    record_of,
    unknown_record,
    words_of,
)
from tools.crash.session import _parse

RESP_SESSION_MINUTES = 0.3
"""Fault period; start-up, recovery and the checks add about 10 s."""


@pytest.mark.parametrize(
    ("command", "value", "reply", "record"),
    [
        ("get", "", None, Record("get", None, output=None)),
        ("get", "", b"", Record("get", None, output="")),
        ("get", "", b"1.2;", Record("get", None, output="1.2;")),
        ("set", "s1.2;", b"OK", Record("put", "s1.2;")),
        ("set-empty", "", b"OK", Record("put", "")),
        ("append", "1.2;", 9, Record("append", "1.2;")),
        ("del", "", 1, Record("delete", None, output=True)),
        ("del", "", 0, Record("delete", None, output=False)),
        ("set-nx", "n1.2;", b"OK", Record("cas", "n1.2;", output=True, expected=None)),
        ("set-nx", "n1.2;", None, Record("cas", "n1.2;", output=False, expected=None)),
        ("set-xx", "x1.2;", b"OK", Record("put", "x1.2;")),
        ("set-xx", "x1.2;", None, Record("get", None, output=None)),
        ("set-xx-get", "g1.2;", b"", Record("cas", "g1.2;", output=True, expected="")),
        ("set-xx-get", "g1.2;", b"0.1;", Record("cas", "g1.2;", output=True, expected="0.1;")),
        ("set-xx-get", "g1.2;", None, Record("get", None, output=None)),
    ],
)
def test_replies_become_model_ops(command: str, value: str, reply: object, record: Record) -> None:
    assert record_of(command, value, reply) == record


@pytest.mark.parametrize(
    "command", ["get", "set", "set-empty", "append", "del", "set-nx", "set-xx", "set-xx-get"]
)
def test_error_replies_are_unknown_outcomes_of_the_write(command: str) -> None:
    value = "" if command == "set-empty" else "v1.2;"
    timeout = hiredis.ReplyError(
        "TIMEOUT no answer from the cluster within 4 s; a write may still take effect"
    )
    record = record_of(command, value, timeout)
    assert record == unknown_record(command, value)
    assert record.unknown and record.output is None
    if command not in ("get", "del"):
        assert record.value == value  # the write it may have been


@pytest.mark.parametrize(
    ("command", "reply"),
    [("set", None), ("append", 2), ("del", 2), ("get", 3), ("set-nx", 1), ("set-xx", b"x")],
)
def test_replies_a_command_never_gives_fail_the_session(command: str, reply: object) -> None:
    with pytest.raises(UnexpectedReply):
        record_of(command, "v1.2;", reply)


def test_commands_are_encoded_as_redis_clients_send_them() -> None:
    assert encode_command(words_of("set-xx-get", "k", "v")) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nXX\r\n$3\r\nGET\r\n"
    )
    reader = hiredis.Reader()
    reader.feed(encode_command(words_of("set-empty", "k", "")))
    assert reader.gets() == [b"SET", b"k", b""]


def test_pinned_clock_records_past_instants() -> None:
    clock = PinnableClock()
    with clock.pinned(12.5):
        assert clock() == 12.5
    assert clock() != 12.5


def test_via_resp_is_parsed_and_replayed() -> None:
    options = _parse(["--seed", "3", "--minutes", "2", "--via", "resp", "--disk-faults"])
    assert options.via == "resp"
    assert options.replay_command().endswith("--disk-faults --via resp")
    assert _parse(["--seed", "3"]).via == "native"


def _drop_a_read_set(ops: list[Operation], clients: int) -> tuple[list[Operation], Operation]:
    """`ops` without one acknowledged SET of a RESP client that a later get read back."""
    for put in ops:
        if put.kind != "put" or put.unknown or not put.value or put.client_id >= clients:
            continue
        assert put.ret is not None
        for get in ops:
            if (
                get.kind == "get"
                and not get.unknown
                and get.call > put.ret
                and isinstance(get.output, str)
                and get.output.startswith(put.value)
            ):
                return [op for op in ops if op is not put], put
    raise AssertionError("no acknowledged SET was read back")


@pytest.mark.slow
async def test_resp_crash_session_passes_and_a_dropped_set_is_illegal(short_tmp: Path) -> None:
    seed = random.SystemRandom().randrange(2**31 - 1)
    options = CrashOptions(
        seed=seed,
        minutes=RESP_SESSION_MINUTES,
        clients=4,
        disk_faults=True,
        via="resp",
        directory=short_tmp / "run",
        keep_dir=True,
    )
    print(f"RESP crash seed {seed}: {options.replay_command()}")
    result = await run_crash(options)
    print(result.summary())
    print_failed_run_files(result)
    assert result.passed, (
        f"RESP crash session failed (seed {seed}): {result.problems}; "
        f"replay: {options.replay_command()}; run directory: {result.run_dir}"
    )
    assert sum(result.fault_counts.values()) > 0
    stats = result.op_stats
    assert all(
        stats.ok[command] > 0 for command in ("get", "set", "append", "del", "set-nx", "set-xx-get")
    )

    ops = load_history(result.run_dir / "history.jsonl")
    mutated, dropped = _drop_a_read_set(ops, options.clients)
    check = check_history(mutated, timeout_s=60)
    assert check.verdict is Verdict.ILLEGAL
    assert check.failing_key == dropped.key


async def test_a_timeout_or_a_lost_connection_is_an_unknown_outcome(
    autojump_clock: trio.abc.Clock,
) -> None:
    """TIMEOUT from the gateway (the connection lives), no reply in time and a closed
    connection (the client reconnects) are all recorded as unknown outcomes."""
    clock = PinnableClock()
    recorder = HistoryRecorder(clock=clock)
    workload = RespWorkload([], "test", recorder, clock, Timeline(), seed=1, clients=1, keys=["k"])
    store = MemoryStore()
    quick = RespGateway(store, password=None, command_deadline_s=GATEWAY_DEADLINE_S)
    slow = RespGateway(store, password=None, command_deadline_s=10 * OP_TIMEOUT_S)

    async def close_at_once(stream: trio.SocketStream) -> None:
        await stream.receive_some(1)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        quick_port = await nursery.start(quick.serve, "127.0.0.1", 0)
        slow_port = await nursery.start(slow.serve, "127.0.0.1", 0)
        (closer,) = await nursery.start(partial(trio.serve_tcp, close_at_once, 0, host="127.0.0.1"))
        connection = await RespConnection.open(quick_port, None)
        assert await workload.run_command(connection, 0, "set-nx", "k", "n0.1;")
        store.hold = trio.Event()
        assert await workload.run_command(connection, 0, "append", "k", "0.2;")  # TIMEOUT reply
        connection = await RespConnection.open(slow_port, None)
        assert not await workload.run_command(connection, 0, "set-xx-get", "k", "g0.3;")
        connection = await RespConnection.open(closer.socket.getsockname()[1], None)
        assert not await workload.run_command(connection, 0, "del", "k", "")
        nursery.cancel_scope.cancel()
    ops = recorder.operations()
    assert [(op.kind, op.value, op.unknown) for op in ops] == [
        ("cas", "n0.1;", False),
        ("append", "0.2;", True),
        ("put", "g0.3;", True),
        ("delete", None, True),
    ]
    assert ops[0].output is True and ops[0].expected is None
    assert workload.stats.ok["set-nx"] == 1
    assert workload.stats.unknown == {"append": 1, "set-xx-get": 1, "del": 1}
    assert check_history(ops).verdict is Verdict.OK
