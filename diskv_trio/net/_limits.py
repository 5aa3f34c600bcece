"""Every limit and timing of the RPC layer, each with its reason."""

from __future__ import annotations

PROTOCOL_VERSION = 1
"""Wire protocol version sent in the hello; a server refuses any other."""

FRAME_BYTES_MAX = 64 * 1024 * 1024
"""Largest frame body accepted or sent (64 MiB).

Large enough for a whole shard's data in one transfer reply, small enough that a bad or
hostile length prefix cannot make a process allocate gigabytes.
"""

HELLO_FRAME_BYTES_MAX = 64 * 1024
"""Largest hello frame: before the peer is authenticated it may not make us buffer much."""

NAME_CHARS_MAX = 256
"""Longest cluster name, role, node id, token or method name accepted in a frame."""

CALLS_IN_FLIGHT_MAX = 256
"""Requests one connection may have executing at once; beyond it the server stops reading
that connection (backpressure) instead of spawning unbounded tasks."""

HELLO_TIMEOUT_S = 10.0
"""Time a new connection has to send its hello, so idle sockets cannot pile up."""

CONNECT_TIMEOUT_S = 5.0
"""Time the pool gives connect + hello before failing the attempt (callers' own deadlines
usually expire first)."""

RECONNECT_DELAY_INITIAL_S = 0.010
"""Backoff after a connection to an address fails or breaks; doubles on each failure."""

RECONNECT_DELAY_MAX_S = 1.0
"""Backoff ceiling: a server that comes back is used again within this time."""

CLOSE_GRACE_S = 10.0
"""After a client closes its connection, its in-flight handlers get this long to finish
(as the course's server finishes a request whose client went away) before being cancelled."""

RECEIVE_BYTES_MAX = 256 * 1024
"""Largest single read from a stream."""

WRITE_BATCH_BYTES_MAX = 1024 * 1024
"""Frames queued for one connection are coalesced into one write up to this size."""

assert HELLO_FRAME_BYTES_MAX <= FRAME_BYTES_MAX
assert RECONNECT_DELAY_INITIAL_S <= RECONNECT_DELAY_MAX_S
assert CALLS_IN_FLIGHT_MAX >= 1
