"""Addresses: ``unix:/path/to/sock`` or ``HOST:PORT``."""

from __future__ import annotations

import os
from dataclasses import dataclass

UNIX_PATH_BYTES_MAX = 107
"""Longest AF_UNIX path: sun_path is 108 bytes on Linux, including the terminating NUL."""

UNIX_PREFIX = "unix:"


@dataclass(frozen=True, slots=True)
class UnixAddress:
    """A Unix-domain stream socket at `path`."""

    path: str

    def __str__(self) -> str:
        return f"{UNIX_PREFIX}{self.path}"


@dataclass(frozen=True, slots=True)
class TcpAddress:
    """A TCP endpoint; `port` 0 (servers only) asks the kernel for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


Address = UnixAddress | TcpAddress


def parse_address(text: str) -> Address:
    """Parse and validate an address string.

    Args:
        text: ``unix:/path/to/sock``, ``HOST:PORT`` or ``[IPV6]:PORT``.

    Returns:
        a `UnixAddress` or `TcpAddress`; ``str()`` of it gives the canonical spelling.

    Raises:
        ValueError: the string is not a valid address; the message says why.
    """
    if not isinstance(text, str):
        raise ValueError(f"address must be a string, not {type(text).__name__}")
    if text != text.strip() or not text:
        raise ValueError(f"address {text!r} is empty or has surrounding whitespace")
    if text.startswith(UNIX_PREFIX):
        path = text[len(UNIX_PREFIX) :]
        if not path:
            raise ValueError(f"address {text!r}: empty socket path after 'unix:'")
        if "\0" in path:
            raise ValueError(f"address {text!r}: socket path contains a NUL byte")
        path_bytes = len(os.fsencode(path))
        if path_bytes > UNIX_PATH_BYTES_MAX:
            raise ValueError(
                f"address {text!r}: socket path is {path_bytes} bytes,"
                f" AF_UNIX allows at most {UNIX_PATH_BYTES_MAX}"
            )
        return UnixAddress(path)
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {text!r}: expected 'unix:/path' or 'HOST:PORT'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host:
            raise ValueError(f"address {text!r}: empty IPv6 host")
    elif ":" in host:
        raise ValueError(f"address {text!r}: write an IPv6 host in brackets, '[::1]:PORT'")
    if any(c.isspace() or c in "/[]" for c in host):
        raise ValueError(f"address {text!r}: invalid host {host!r}")
    if not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"address {text!r}: port {port_text!r} is not a decimal number")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"address {text!r}: port {port} is out of range 0..65535")
    return TcpAddress(host, port)
