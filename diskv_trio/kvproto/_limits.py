"""Key/value limits, checked in one place by client and servers alike.

Rules kept here:
- Each constant says why it has its value; the relations between them, and with the frame
  and journal record caps of the layers below, are asserted at import, so a change that
  would let the largest value miss one frame or one journal record fails at once.
"""

from __future__ import annotations

from journal._format import RECORD_BYTES_MAX

from ..net._limits import CLIENT_FRAME_BYTES_MAX, FRAME_BYTES_MAX

KEY_BYTES_MAX = 4096
"""Longest key (bytes): keys live in memory, in every snapshot and in each shard hand-off."""

VALUE_BYTES_MAX = 16 * 1024 * 1024
"""Largest value (bytes): a value travels whole in one client frame and one log entry."""

CLIENT_CHARS_MAX = 64
"""Longest client id: each one is kept in a duplicate table per shard it wrote to."""

NUMBER_MAX = 2**63 - 1
"""Largest sequence or config number: one CBOR uint, never a bignum (the wire refuses those,
so a log entry holding one would decode differently at the proposer and at its peers)."""

SHARD_COUNT_MAX = 4096
"""Most shards a cluster may have: every config lists an owner per shard and is sent whole in
each query reply and kept in the shardmaster's history."""

OP_OVERHEAD_BYTES_MAX = 1024
"""Room for an op's fields besides its key and values (names, client id, numbers, framing)."""

CAS_VALUES_BYTES_MAX = VALUE_BYTES_MAX
"""A compare-and-set's expected and new values together: the op still fits one client frame."""

OP_BYTES_MAX = KEY_BYTES_MAX + VALUE_BYTES_MAX + OP_OVERHEAD_BYTES_MAX
"""The largest client op on the wire and in a log entry."""

assert CAS_VALUES_BYTES_MAX <= VALUE_BYTES_MAX
assert OP_BYTES_MAX <= CLIENT_FRAME_BYTES_MAX  # the largest op fits one client frame,
assert CLIENT_FRAME_BYTES_MAX <= FRAME_BYTES_MAX  # the log entry holding it one peer frame,
assert FRAME_BYTES_MAX <= RECORD_BYTES_MAX  # and that entry one journal record
assert CLIENT_CHARS_MAX > 0
