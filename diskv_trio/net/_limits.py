"""Every limit and timing of the RPC layer, each with its reason."""

from __future__ import annotations

PROTOCOL_VERSION = 2
"""Wire protocol version sent in the hello; a server refuses any other."""

FRAME_BYTES_MAX = 64 * 1024 * 1024
"""Largest frame body accepted or sent (64 MiB).

Large enough for a whole shard's data in one transfer reply, small enough that a bad or
hostile length prefix cannot make a process allocate gigabytes.
"""

HELLO_FRAME_BYTES_MAX = 64 * 1024
"""Largest hello frame: before the peer is authenticated it may not make us buffer much."""

NAME_CHARS_MAX = 256
"""Longest cluster name, role, node id or method name accepted in a frame."""

CALLS_IN_FLIGHT_MAX = 256
"""Requests one connection may have executing at once; beyond it the server stops reading
that connection (backpressure) instead of spawning unbounded tasks."""

HELLO_TIMEOUT_S = 5.0
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

# -- the boundary: what one connection may take ------------------------------------------

NONCE_BYTES = 32
"""Random bytes each side contributes to a handshake, so a recorded proof never replays."""

WIRE_DEPTH_MAX = 32
"""Deepest nesting of containers accepted in a frame. Far below what storage decodes, so any
value accepted here can be wrapped in log entries and snapshots and still be read back."""

CLIENT_FRAME_BYTES_MAX = 16 * 1024 * 1024 + 64 * 1024
"""Largest frame from a client or operator: the largest legal request (a 16 MiB value, its
key and the framing). Only authenticated peers may send up to `FRAME_BYTES_MAX`."""

CLIENT_FRAME_ITEMS_MAX = 1024
"""CBOR data items in one frame from a client or operator. A legal request holds a few
dozen; the bound stops a frame of millions of empty containers from costing gigabytes of
memory and seconds of event-loop time to decode (and bounds dict hash-collision work)."""

UNAUTHENTICATED_CONNECTIONS_MAX = 128
"""Connections still in their handshake; more are closed at once."""

CLIENT_CONNECTIONS_MAX = 1024
"""Authenticated client and operator connections; peers are not counted against it."""

FD_RESERVE = 64
"""File descriptors never given to connections, so the journal can always open a file."""

FD_SOFT_LIMIT_WANTED = 65536
"""The soft descriptor limit a server raises itself to at start (never above the hard one)."""

CLIENT_IDLE_TIMEOUT_S = 300.0
"""A client connection with no request for this long is closed (the client reconnects)."""

FRAME_STALL_TIMEOUT_S = 30.0
"""Once a frame has begun, its next bytes must arrive within this long, or the connection
is closed: a half-sent frame cannot hold its buffer for ever."""

OUTPUT_BYTES_MAX = 64 * 1024 * 1024 + 1024 * 1024
"""Reply bytes queued for one connection; a caller that does not read its replies past
this loses its connection instead of pinning the server's memory."""

WRITE_STALL_TIMEOUT_S = 30.0
"""A write that makes no progress for this long closes the connection."""


assert CLIENT_FRAME_BYTES_MAX <= FRAME_BYTES_MAX
assert OUTPUT_BYTES_MAX > FRAME_BYTES_MAX
