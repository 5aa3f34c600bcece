"""File descriptors: raise the soft limit at start, and size connection caps below it.

Connections past the limit would make the journal fail to open a segment, which stops the
server; keeping `FD_RESERVE` descriptors out of the connections' reach means a flood of
sockets can only be refused, never turn into a storage error.
"""

from __future__ import annotations

import resource

from ._limits import FD_RESERVE, FD_SOFT_LIMIT_WANTED


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit towards `FD_SOFT_LIMIT_WANTED`; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FD_SOFT_LIMIT_WANTED if hard == resource.RLIM_INFINITY else min(hard, FD_SOFT_LIMIT_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return FD_SOFT_LIMIT_WANTED if soft == resource.RLIM_INFINITY else soft


def inbound_connections_max() -> int:
    """Inbound connections one server may hold: half the descriptors minus the reserve
    (the other half is left to outbound connections, the journal and the runtime)."""
    return max(16, raise_fd_limit() // 2 - FD_RESERVE)
