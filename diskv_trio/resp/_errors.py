"""The gateway's errors, by cause.

- `RespProtocolError`: a client's bytes are not a RESP request the gateway accepts
  (malformed, an inline command, a nested or oversized array, a too-long bulk string). The
  connection is answered ``-ERR Protocol error: ...`` and closed, as Redis does, because
  after bad framing nothing later on the stream can be trusted to start a command.
"""

from __future__ import annotations


class RespProtocolError(Exception):
    """Raised by `RequestReader.feed` when a client broke the request grammar or a limit;
    the reader refuses further input."""
