"""The sans-I/O core: request reading, reply encoding, sessions and store plans.

Requests go in as bytes (whole, and byte by byte), replies are compared as wire bytes in
both protocol versions; plans run against a dict, with a writer slipped in between a plan's
read and its compare-and-set where races matter.
"""

from __future__ import annotations

import pytest

import diskv_trio.resp as resp
from diskv_trio.kvproto import KEY_BYTES_MAX
from diskv_trio.resp import (
    ARGUMENTS_MAX,
    BULK_BYTES_MAX,
    CAS_ATTEMPTS_MAX,
    COMMAND_BYTES_MAX,
    NULL,
    RESP2,
    RESP3,
    Answer,
    Array,
    Bulk,
    Error,
    GatewayFacts,
    GatewayStats,
    Integer,
    Map,
    RequestReader,
    Run,
    Session,
    Simple,
    encode,
)
from tests.resp.memory_store import run_plan


def test_exports_are_complete() -> None:
    public = {name for name in dir(resp) if not name.startswith("_")}
    modules = {name for name in public if isinstance(getattr(resp, name), type(resp))}
    assert public - modules == set(resp.__all__)


# ---- reading requests -------------------------------------------------------------------

def command(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


GOOD = [
    (command(b"GET", b"k"), [[b"GET", b"k"]]),
    (command(b"SET", b"k", b"a\r\nb\x00\xff") + command(b"PING"), [[b"SET", b"k", b"a\r\nb\x00\xff"], [b"PING"]]),
    (command(b"ECHO", b""), [[b"ECHO", b""]]),
]


@pytest.mark.parametrize("data, expected", GOOD)
def test_reader_reads_commands_whole_and_byte_by_byte(data: bytes, expected: list[list[bytes]]) -> None:
    assert RequestReader().feed(data).commands == expected
    reader, got = RequestReader(), []
    for index in range(len(data)):
        parsed = reader.feed(data[index : index + 1])
        assert parsed.error is None
        got += parsed.commands
        # Mid-command exactly while fewer commands are complete than the bytes so far hold.
        assert reader.in_command == (not parsed.commands)
    assert got == expected


BAD = [
    (b"PING\r\n", "inline commands are not supported"),
    (b"*1\r\n*1\r\n$1\r\nx\r\n", "arguments are bulk strings"),
    (b"*1\r\n:5\r\n", "arguments are bulk strings"),
    (b"*0\r\n", "invalid multibulk length"),
    (b"*-1\r\n", "invalid multibulk length"),
    (b"*%d\r\n" % (ARGUMENTS_MAX + 1), "invalid multibulk length"),
    (b"*2000000000\r\n", "invalid multibulk length"),
    (b"*1\r\n$%d\r\n" % (BULK_BYTES_MAX + 1), "invalid bulk length"),
    (b"*1\r\n$99999999999999999999\r\n", "invalid bulk length"),
    (b"*1\r\n$" + b"9" * 30 + b"\r\n", "header line too long"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$+1\r\nx\r\n", "invalid bulk length"),
    (b"*1\r\n$1\r\nxy\r\n", "not followed by CRLF"),
    (b"*1" + b"1" * 40, "header line too long"),
]


@pytest.mark.parametrize("data, fragment", BAD)
def test_reader_refuses_what_is_not_a_request(data: bytes, fragment: str) -> None:
    reader = RequestReader()
    parsed = reader.feed(command(b"PING") + data)
    assert parsed.commands == [[b"PING"]]  # whole commands before the bad bytes still count
    assert parsed.error is not None and fragment in str(parsed.error)
    again = reader.feed(command(b"PING"))
    assert again.commands == [] and again.error is parsed.error


def test_reader_bounds_a_command_that_never_ends() -> None:
    """Two maximal bulk strings are each legal, together longer than one command may be."""
    reader = RequestReader()
    assert reader.feed(b"*3\r\n$3\r\nSET\r\n$%d\r\n" % BULK_BYTES_MAX).error is None
    chunk = b"x" * (1024 * 1024)
    fed = len(b"*3\r\n$3\r\nSET\r\n$%d\r\n" % BULK_BYTES_MAX)
    for _ in range(BULK_BYTES_MAX // len(chunk)):
        assert reader.feed(chunk).error is None
        fed += len(chunk)
    assert reader.feed(b"\r\n$%d\r\n" % BULK_BYTES_MAX).error is None
    error = None
    while error is None:
        error = reader.feed(chunk).error
        fed += len(chunk)
    assert "command longer than" in str(error)
    assert fed <= COMMAND_BYTES_MAX + len(chunk)


# ---- encoding replies -------------------------------------------------------------------

REPLIES = [
    (Simple("OK"), b"+OK\r\n", b"+OK\r\n"),
    (Error("ERR bad\r\nline"), b"-ERR bad  line\r\n", b"-ERR bad  line\r\n"),
    (Integer(-3), b":-3\r\n", b":-3\r\n"),
    (Bulk(b"a\r\n"), b"$3\r\na\r\n\r\n", b"$3\r\na\r\n\r\n"),
    (NULL, b"$-1\r\n", b"_\r\n"),
    (Array((Bulk(b"x"), NULL)), b"*2\r\n$1\r\nx\r\n$-1\r\n", b"*2\r\n$1\r\nx\r\n_\r\n"),
    (Map(((Bulk(b"k"), Integer(1)),)), b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
]


@pytest.mark.parametrize("reply, resp2, resp3", REPLIES)
def test_replies_encode_in_both_protocols(reply: resp.Reply, resp2: bytes, resp3: bytes) -> None:
    assert encode(reply, RESP2) == resp2
    assert encode(reply, RESP3) == resp3


# ---- sessions ---------------------------------------------------------------------------

FACTS = GatewayFacts("test", 1, 6379, 0.0, 10, True)


def session(password: bytes | None = b"secret") -> Session:
    return Session(7, FACTS, GatewayStats(), password)


def answer(s: Session, *words: bytes) -> bytes:
    step = s.command(list(words), 0.0)
    assert isinstance(step, Answer)
    return s.encode(step.reply)


def test_session_requires_auth_and_refuses_a_wrong_password() -> None:
    s = session()
    assert answer(s, b"GET", b"k") == b"-NOAUTH Authentication required.\r\n"
    assert answer(s, b"AUTH", b"wrong").startswith(b"-WRONGPASS")
    assert answer(s, b"AUTH", b"nobody", b"secret").startswith(b"-WRONGPASS")
    assert not s.authenticated
    assert answer(s, b"AUTH", b"secret") == b"+OK\r\n"
    assert isinstance(s.command([b"GET", b"k"], 0.0), Run)
    open_session = session(None)
    assert isinstance(open_session.command([b"get", b"k"], 0.0), Run)
    assert b"without any password configured" in answer(open_session, b"AUTH", b"x")


def test_hello_switches_protocol_and_can_authenticate() -> None:
    s = session()
    assert answer(s, b"HELLO", b"3").startswith(b"-NOAUTH HELLO must be called")
    assert answer(s, b"HELLO", b"4") == b"-NOPROTO unsupported protocol version\r\n"
    reply = answer(s, b"HELLO", b"3", b"AUTH", b"default", b"secret", b"SETNAME", b"app")
    assert reply.startswith(b"%7\r\n") and b"$5\r\nproto\r\n:3\r\n" in reply
    assert s.protocol == RESP3 and s.name == b"app"
    assert answer(s, b"CLIENT", b"GETNAME") == b"$3\r\napp\r\n"
    assert answer(s, b"HELLO", b"2").startswith(b"*14\r\n")
    assert s.protocol == RESP2


@pytest.mark.parametrize(
    "words, expected",
    [
        ((b"PING",), b"+PONG\r\n"),
        ((b"ping", b"hi"), b"$2\r\nhi\r\n"),
        ((b"PING", b"a", b"b"), b"-ERR wrong number of arguments for 'ping' command\r\n"),
        ((b"ECHO", b"\x00\r\n"), b"$3\r\n\x00\r\n\r\n"),
        ((b"GET",), b"-ERR wrong number of arguments for 'get' command\r\n"),
        ((b"FLUSHALL", b"x"), b"-ERR unknown command 'FLUSHALL', with args beginning with: 'x' \r\n"),
        ((b"SELECT", b"0"), b"+OK\r\n"),
        ((b"SELECT", b"1"), b"-ERR DB index is out of range\r\n"),
        ((b"SELECT", b"x"), b"-ERR value is not an integer or out of range\r\n"),
        ((b"CLIENT", b"GETNAME"), b"$-1\r\n"),
        ((b"CLIENT", b"SETNAME", b"a b"), b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
        ((b"CLIENT", b"ID"), b":7\r\n"),
        ((b"CLIENT", b"KILL"), b"-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n"),
        ((b"COMMAND", b"COUNT"), b":%d\r\n" % len(resp.COMMANDS)),
        ((b"COMMAND", b"DOCS"), b"*0\r\n"),
        ((b"SET", b"k", b"v", b"EX", b"10"), b"-ERR SET EX is not supported: diskv keys do not expire\r\n"),
        ((b"SET", b"k", b"v", b"NX", b"XX"), b"-ERR syntax error\r\n"),
        ((b"GET", b"k" * (KEY_BYTES_MAX + 1)), b"-ERR key is %d bytes; the limit is %d\r\n" % (KEY_BYTES_MAX + 1, KEY_BYTES_MAX)),
        ((b"DEL", b"a", b"k" * (KEY_BYTES_MAX + 1)), b"-ERR key is %d bytes; the limit is %d\r\n" % (KEY_BYTES_MAX + 1, KEY_BYTES_MAX)),
    ],
)
def test_connection_commands_answer_like_redis(words: tuple[bytes, ...], expected: bytes) -> None:
    s = session(None)
    assert answer(s, *words) == expected


def test_quit_closes_and_info_reports_sections() -> None:
    s = session(None)
    step = s.command([b"QUIT"], 0.0)
    assert isinstance(step, Answer) and step.close
    info = answer(s, b"INFO", b"clients")
    assert b"connected_clients:0" in info and b"# Server" not in info
    assert all(f"# {name}".encode() in answer(s, b"INFO") for name in ("Server", "Clients", "Stats", "Keyspace"))
    entry = s.command([b"COMMAND", b"INFO", b"get", b"nope"], 0.0)
    assert isinstance(entry, Answer) and isinstance(entry.reply, Array)
    assert entry.reply.items[1] == NULL


# ---- store plans ------------------------------------------------------------------------

def run(data: dict[bytes, bytes], *words: bytes, before_cas=None) -> bytes:
    step = session(None).command(list(words), 0.0)
    assert isinstance(step, Run)
    return encode(run_plan(step.plan, data, before_cas), RESP2)


def test_store_commands_follow_redis_semantics() -> None:
    data: dict[bytes, bytes] = {}
    assert run(data, b"GET", b"k") == b"$-1\r\n"
    assert run(data, b"SET", b"k", b"") == b"+OK\r\n"
    assert run(data, b"GET", b"k") == b"$0\r\n\r\n"  # an empty value is not a missing key
    assert run(data, b"SET", b"k", b"v", b"NX") == b"$-1\r\n"
    assert run(data, b"SET", b"n", b"v", b"nx") == b"+OK\r\n"
    assert run(data, b"SET", b"m", b"v", b"XX") == b"$-1\r\n" and b"m" not in data
    assert run(data, b"SET", b"n", b"w", b"XX", b"GET") == b"$1\r\nv\r\n" and data[b"n"] == b"w"
    assert run(data, b"SET", b"n", b"x", b"NX", b"GET") == b"$1\r\nw\r\n" and data[b"n"] == b"w"
    assert run(data, b"SET", b"new", b"x", b"GET") == b"$-1\r\n" and data[b"new"] == b"x"
    assert run(data, b"APPEND", b"a", b"12") == b":2\r\n"
    assert run(data, b"APPEND", b"a", b"345") == b":5\r\n" and data[b"a"] == b"12345"
    assert run(data, b"STRLEN", b"a") == b":5\r\n"
    assert run(data, b"STRLEN", b"zz") == b":0\r\n"
    assert run(data, b"MGET", b"a", b"zz", b"k") == b"*3\r\n$5\r\n12345\r\n$-1\r\n$0\r\n\r\n"
    assert run(data, b"EXISTS", b"a", b"a", b"zz") == b":2\r\n"
    assert run(data, b"DEL", b"a", b"zz", b"k") == b":2\r\n"
    assert b"a" not in data and b"k" not in data


def test_read_then_cas_plans_retry_a_lost_race_and_give_up_boundedly() -> None:
    data = {b"k": b"0"}
    races = iter([b"1", b"2"])

    def one_race_per_cas() -> None:
        data[b"k"] = next(races, data[b"k"])

    assert run(data, b"APPEND", b"k", b"x", before_cas=one_race_per_cas) == b":2\r\n"
    assert data[b"k"] == b"2x"
    counter = iter(range(10_000))

    def always() -> None:
        data[b"k"] = b"%d" % next(counter)

    assert run(data, b"SET", b"k", b"v", b"XX", before_cas=always).startswith(b"-TRYAGAIN")
    assert next(counter) == CAS_ATTEMPTS_MAX
