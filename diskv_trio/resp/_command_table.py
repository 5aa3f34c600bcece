"""The commands the gateway knows: arity, flags and key positions, as COMMAND reports them.

Rules kept here:
- Arity is Redis's: positive means exactly that many words (the name included), negative
  at least that many. Every command is checked against it before anything runs.
- This table is the one list of commands: dispatch, COMMAND and COMMAND COUNT read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    arity: int
    flags: tuple[str, ...]
    first_key: int
    last_key: int
    step: int
    no_auth: bool = False
    """Served before AUTH (AUTH, HELLO, QUIT), as in Redis."""

    def accepts(self, words: int) -> bool:
        """True if a command of `words` words (its name included) has a valid arity."""
        return words == self.arity if self.arity > 0 else words >= -self.arity


_READ = ("readonly", "fast")
_WRITE = ("write", "denyoom")
_CONNECTION = ("noscript", "loading", "stale", "fast")

COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("get", 2, _READ, 1, 1, 1),
        CommandSpec("set", -3, _WRITE, 1, 1, 1),
        CommandSpec("append", 3, (*_WRITE, "fast"), 1, 1, 1),
        CommandSpec("del", -2, ("write",), 1, -1, 1),
        CommandSpec("exists", -2, _READ, 1, -1, 1),
        CommandSpec("mget", -2, _READ, 1, -1, 1),
        CommandSpec("strlen", 2, _READ, 1, 1, 1),
        CommandSpec("ping", -1, ("fast",), 0, 0, 0),
        CommandSpec("echo", 2, ("fast",), 0, 0, 0),
        CommandSpec("auth", -2, (*_CONNECTION, "no_auth"), 0, 0, 0, no_auth=True),
        CommandSpec("hello", -1, (*_CONNECTION, "no_auth"), 0, 0, 0, no_auth=True),
        CommandSpec("quit", -1, (*_CONNECTION, "no_auth"), 0, 0, 0, no_auth=True),
        CommandSpec("select", 2, ("loading", "stale", "fast"), 0, 0, 0),
        CommandSpec("client", -2, ("noscript", "loading", "stale"), 0, 0, 0),
        CommandSpec("command", -1, ("loading", "stale"), 0, 0, 0),
        CommandSpec("info", -1, ("loading", "stale"), 0, 0, 0),
    )
}
