"""One connection's protocol decisions: a command in, an answer or a store plan out.

Rules kept here:
- `Session.command` takes one command (its words, as bytes) and returns `Answer` (a reply,
  maybe followed by closing the connection) or `Run` (a store plan for the driver to run).
  No sockets, tasks or clock: `now_s` is an argument; the driver encodes with `encode`.
- Every command is checked against the command table (name, arity) and, when the gateway
  has a password, against authentication, before anything runs: an unknown command or a
  wrong arity is an error reply and the connection lives.
- AUTH and HELLO ... AUTH take the gateway's password with the user "default" (or no user).
  A wrong password leaves the session as it was.
- Keys longer than `KEY_BYTES_MAX` are refused before a plan starts, so a multi-key
  command is never half applied because of one bad key.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from diskv_trio.kvproto import KEY_BYTES_MAX

from ._command_table import COMMANDS
from ._info import (
    GatewayFacts,
    GatewayStats,
    all_command_entries,
    command_entry,
    hello_map,
    info_text,
)
from ._limits import CLIENT_NAME_CHARS_MAX
from ._plans import (
    Condition,
    Plan,
    append_plan,
    delete_plan,
    exists_plan,
    get_plan,
    mget_plan,
    set_plan,
    strlen_plan,
)
from ._replies import (
    NULL,
    OK,
    RESP2,
    RESP3,
    Array,
    Bulk,
    Error,
    Integer,
    Map,
    Reply,
    Simple,
    bulk_text,
    encode,
    error,
)

DEFAULT_USER = b"default"

NOAUTH = error("NOAUTH", "Authentication required.")
WRONGPASS = error("WRONGPASS", "invalid username-password pair or user is disabled.")
SYNTAX = error("ERR", "syntax error")


@dataclass(frozen=True, slots=True)
class Answer:
    """Send `reply`; then close the connection if `close`."""

    reply: Reply
    close: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    """Run `plan` against the store and send the reply it returns."""

    name: str
    plan: Plan


Step = Answer | Run


def _arity(name: str) -> Error:
    return error("ERR", f"wrong number of arguments for '{name}' command")


def _unknown(words: list[bytes]) -> Error:
    name = words[0].decode("utf-8", "replace")[:128]
    shown = "".join(f"'{w.decode('utf-8', 'replace')[:128]}' " for w in words[1:])[:128]
    return error("ERR", f"unknown command '{name}', with args beginning with: {shown}")


class Session:
    """The state of one RESP connection: protocol version, authentication, name."""

    def __init__(self, client_id: int, facts: GatewayFacts, stats: GatewayStats, password: bytes | None) -> None:
        self.client_id = client_id
        self.protocol = RESP2
        self.name: bytes | None = None
        self._facts = facts
        self._stats = stats
        self._password = password
        self.authenticated = password is None

    def encode(self, reply: Reply) -> bytes:
        """`reply` in this connection's protocol version."""
        return encode(reply, self.protocol)

    def command(self, words: list[bytes], now_s: float) -> Step:
        """What to do for the command `words` (name first, any case)."""
        assert words, "the reader yields commands of at least one word"
        name = words[0].decode("latin-1").lower()
        spec = COMMANDS.get(name)
        if spec is None:
            return Answer(_unknown(words))
        if not spec.accepts(len(words)):
            return Answer(_arity(name))
        if not self.authenticated and not spec.no_auth:
            return Answer(NOAUTH)
        handler = self._HANDLERS.get(name)
        if handler is not None:
            return handler(self, words[1:], now_s)
        return self._store_command(name, words[1:])

    # ---- store commands -------------------------------------------------------------

    def _store_command(self, name: str, args: list[bytes]) -> Step:
        keys = args if name in ("del", "exists", "mget") else args[:1]
        for key in keys:
            if len(key) > KEY_BYTES_MAX:
                return Answer(error("ERR", f"key is {len(key)} bytes; the limit is {KEY_BYTES_MAX}"))
        if name == "get":
            return Run(name, get_plan(args[0]))
        if name == "strlen":
            return Run(name, strlen_plan(args[0]))
        if name == "append":
            return Run(name, append_plan(args[0], args[1]))
        if name == "del":
            return Run(name, delete_plan(args))
        if name == "exists":
            return Run(name, exists_plan(args))
        if name == "mget":
            return Run(name, mget_plan(args))
        assert name == "set"
        return self._set(args)

    def _set(self, args: list[bytes]) -> Step:
        condition: Condition = None
        get_old = False
        for option in (word.upper() for word in args[2:]):
            if option in (b"NX", b"XX") and condition is None:
                condition = "NX" if option == b"NX" else "XX"
            elif option == b"GET" and not get_old:
                get_old = True
            elif option in (b"EX", b"PX", b"EXAT", b"PXAT", b"KEEPTTL"):
                return Answer(error("ERR", f"SET {option.decode()} is not supported: diskv keys do not expire"))
            else:
                return Answer(SYNTAX)
        return Run("set", set_plan(args[0], args[1], condition, get_old))

    # ---- connection commands --------------------------------------------------------

    def _ping(self, args: list[bytes], now_s: float) -> Step:
        if len(args) > 1:
            return Answer(_arity("ping"))
        return Answer(Bulk(args[0]) if args else Simple("PONG"))

    def _echo(self, args: list[bytes], now_s: float) -> Step:
        return Answer(Bulk(args[0]))

    def _quit(self, args: list[bytes], now_s: float) -> Step:
        return Answer(OK, close=True)

    def _select(self, args: list[bytes], now_s: float) -> Step:
        if not args[0].lstrip(b"-").isdigit():
            return Answer(error("ERR", "value is not an integer or out of range"))
        return Answer(OK if int(args[0]) == 0 else error("ERR", "DB index is out of range"))

    def _check_password(self, user: bytes, password: bytes) -> Reply | None:
        """None if `user`/`password` are right (and authenticate), else the error to send."""
        if self._password is None:
            return error(
                "ERR",
                "AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?",
            )
        right_user = hmac.compare_digest(user, DEFAULT_USER)
        if not (hmac.compare_digest(password, self._password) and right_user):
            return WRONGPASS
        self.authenticated = True
        return None

    def _auth(self, args: list[bytes], now_s: float) -> Step:
        if len(args) > 2:
            return Answer(SYNTAX)
        user, password = (DEFAULT_USER, args[0]) if len(args) == 1 else (args[0], args[1])
        return Answer(self._check_password(user, password) or OK)

    def _hello(self, args: list[bytes], now_s: float) -> Step:
        protocol = self.protocol
        if args:
            if not args[0].isdigit() or int(args[0]) not in (RESP2, RESP3):
                return Answer(error("NOPROTO", "unsupported protocol version"))
            protocol = int(args[0])
        name: bytes | None = None
        credentials: tuple[bytes, bytes] | None = None
        rest = args[1:]
        while rest:
            option = rest[0].upper()
            if option == b"AUTH" and len(rest) >= 3:
                credentials, rest = (rest[1], rest[2]), rest[3:]
            elif option == b"SETNAME" and len(rest) >= 2:
                name, rest = rest[1], rest[2:]
            else:
                return Answer(error("ERR", f"Syntax error in HELLO option '{rest[0].decode('utf-8', 'replace')[:64]}'"))
        if credentials is not None:
            failure = self._check_password(*credentials)
            if failure is not None:
                return Answer(failure)
        if not self.authenticated:
            return Answer(error(
                "NOAUTH",
                "HELLO must be called with the client already authenticated, otherwise the "
                "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
                "and select the RESP protocol version at the same time",
            ))
        if name is not None:
            failure = _name_error(name)
            if failure is not None:
                return Answer(failure)
            self.name = name
        self.protocol = protocol
        return Answer(hello_map(self._facts, self.client_id, protocol))

    def _client(self, args: list[bytes], now_s: float) -> Step:
        sub, rest = args[0].upper(), args[1:]
        if sub == b"SETNAME" and len(rest) == 1:
            failure = _name_error(rest[0])
            if failure is not None:
                return Answer(failure)
            self.name = rest[0] or None
            return Answer(OK)
        if sub == b"GETNAME" and not rest:
            return Answer(NULL if self.name is None else Bulk(self.name))
        if sub == b"ID" and not rest:
            return Answer(Integer(self.client_id))
        if sub == b"SETINFO" and len(rest) == 2 and rest[0].upper() in (b"LIB-NAME", b"LIB-VER"):
            return Answer(OK)
        if sub in (b"SETNAME", b"GETNAME", b"ID", b"SETINFO"):
            return Answer(error("ERR", f"wrong number of arguments for 'client|{sub.decode().lower()}' command"))
        return Answer(error("ERR", f"unknown subcommand '{args[0].decode('utf-8', 'replace')[:64]}'. Try CLIENT HELP."))

    def _command(self, args: list[bytes], now_s: float) -> Step:
        if not args:
            return Answer(all_command_entries())
        sub, rest = args[0].upper(), args[1:]
        if sub == b"COUNT" and not rest:
            return Answer(Integer(len(COMMANDS)))
        if sub == b"LIST" and not rest:
            return Answer(Array(tuple(bulk_text(name) for name in COMMANDS)))
        if sub == b"INFO":
            names = [n.decode("latin-1").lower() for n in rest]
            if not names:
                return Answer(all_command_entries())
            return Answer(Array(tuple(command_entry(COMMANDS[n]) if n in COMMANDS else NULL for n in names)))
        if sub == b"DOCS":
            # No docs: redis-cli then falls back to the help built into it.
            return Answer(Map(()))
        return Answer(error("ERR", f"unknown subcommand '{args[0].decode('utf-8', 'replace')[:64]}'. Try COMMAND HELP."))

    def _info(self, args: list[bytes], now_s: float) -> Step:
        sections = [a.decode("latin-1").lower() for a in args]
        return Answer(bulk_text(info_text(sections, self._facts, self._stats, now_s)))

    _HANDLERS: dict[str, Callable[[Session, list[bytes], float], Step]] = {
        "ping": _ping,
        "echo": _echo,
        "quit": _quit,
        "select": _select,
        "auth": _auth,
        "hello": _hello,
        "client": _client,
        "command": _command,
        "info": _info,
    }


def _name_error(name: bytes) -> Reply | None:
    if len(name) > CLIENT_NAME_CHARS_MAX:
        return error("ERR", f"Client names are limited to {CLIENT_NAME_CHARS_MAX} bytes")
    if any(byte <= 32 or byte > 126 for byte in name):
        return error("ERR", "Client names cannot contain spaces, newlines or special characters.")
    return None
