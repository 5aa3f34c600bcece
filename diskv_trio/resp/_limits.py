"""Every limit of the Redis-protocol gateway, each with its reason.

Rules kept here:
- A limit bounds what one connection can make the gateway hold or do; the relations with
  the key/value limits below it are asserted at import, so a legal SET always fits one
  command and the largest command always fits the bytes a connection may buffer.
"""

from __future__ import annotations

from diskv_trio.kvproto import CAS_VALUES_BYTES_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX

BULK_BYTES_MAX = VALUE_BYTES_MAX
"""Longest bulk string in a request (Redis's proto-max-bulk-len): no key or value the store
accepts is longer, so a longer declared length is refused before its bytes are buffered."""

ARGUMENTS_MAX = 1025
"""Most arguments in one command: MGET, DEL or EXISTS of 1,024 keys. hiredis sizes a list
from the array header before any element arrives, so a header claiming billions of
elements would reserve gigabytes; it is refused first."""

COMMAND_BYTES_MAX = VALUE_BYTES_MAX + KEY_BYTES_MAX + 64 * 1024
"""Most bytes of one command as sent: a SET of the largest value with its key, options and
framing. A client that declares more is cut off before the gateway buffers it."""

PIPELINE_COMMANDS_MAX = 128
"""Commands parsed but not yet answered on one connection; past this the gateway stops
reading it (TCP backpressure) rather than queueing without bound."""

CONNECTIONS_MAX = 10_000
"""Open client connections; one more gets Redis's 'max number of clients reached' and is
closed. An idle connection costs a task and a few KiB, so thousands are fine; the cap is
also kept below half the process's descriptor limit at start."""

KEYS_IN_FLIGHT_MAX = 64
"""Per-key calls one multi-key command (MGET, DEL, EXISTS) runs at once."""

COMMAND_DEADLINE_S = 10.0
"""A command that the cluster has not answered within this long gets an error naming what
the client waits for (a write may still take effect later, as after any timeout)."""

COMMAND_STALL_S = 30.0
"""Once a command has begun arriving, its next bytes must come within this long, or the
connection is closed: a half-sent command cannot hold its buffer for ever."""

IDLE_S = 300.0
"""A connection with no command for this long is closed (as the native server does;
Redis clients reconnect on their next command)."""

CAS_ATTEMPTS_MAX = 64
"""Read-then-compare-and-set rounds one SET XX/GET or APPEND tries before it answers an
error; each failed round means another client wrote the key in between."""

APPEND_VALUE_BYTES_MAX = CAS_VALUES_BYTES_MAX // 2
"""Largest value APPEND can produce: it writes through compare-and-set (so its reply, the
new length, is exact), whose expected and new values share `CAS_VALUES_BYTES_MAX`."""

CLIENT_NAME_CHARS_MAX = 256
"""Longest CLIENT SETNAME name: kept per connection and shown in INFO."""

RECEIVE_BYTES_MAX = 64 * 1024
"""Largest single read from a connection."""

WRITE_BATCH_BYTES_MAX = 256 * 1024
"""The replies of a pipeline are written together up to this many bytes at a time."""

WRITE_STALL_S = 30.0
"""A write of replies that makes no progress for this long closes the connection: a client
that stops reading cannot pin replies (and, through backpressure, its commands) for ever."""

assert BULK_BYTES_MAX >= max(KEY_BYTES_MAX, VALUE_BYTES_MAX)
assert COMMAND_BYTES_MAX > BULK_BYTES_MAX + KEY_BYTES_MAX
assert ARGUMENTS_MAX >= 3
assert KEYS_IN_FLIGHT_MAX >= 1
assert PIPELINE_COMMANDS_MAX >= 1
assert COMMAND_STALL_S <= IDLE_S
