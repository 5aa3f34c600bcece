"""What AUTH must present: the cluster's client key in hex, or a gateway password file.

Rules kept here:
- By default the password is the hex text of ``client.key``, exactly as the file holds it:
  the gateway calls the cluster with that key, so whoever knows it may already do all a
  RESP client can, and no second secret needs creating, handing out or rotating.
- A RESP password crosses the wire in clear (the native protocol proves the key without
  sending it). Where RESP crosses a network that is not trusted, give the gateway its own
  password file instead, so a sniffed password never opens the native protocol.
- A password file must be private to its owner, as key files are, and hold one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from diskv_trio.net import Credentials, Role

PASSWORD_BYTES_MAX = 512
"""Longest password read from a file (Redis passwords are one short line)."""


class PasswordError(Exception):
    """Raised when no password can be had: no client key, or an unusable password file."""


def client_key_password(credentials: Credentials | None) -> bytes:
    """The hex client key, as AUTH must present it.

    Raises:
        PasswordError: `credentials` hold no client key.
    """
    key = credentials.keys.get(Role.CLIENT) if credentials is not None else None
    if key is None:
        raise PasswordError("no client key found (--credentials, DISKV_CREDENTIALS or DIR/credentials/client.key)")
    return key.hex().encode()


def read_password_file(path: Path) -> bytes:
    """The password held in `path` (its first line).

    Raises:
        PasswordError: missing, readable by others, empty or too long.
    """
    try:
        info = os.stat(path)
        text = path.read_bytes()[: PASSWORD_BYTES_MAX + 2]
    except OSError as exc:
        raise PasswordError(f"cannot read password file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PasswordError(f"password file {path} is readable by others (chmod 600 it)")
    lines = text.splitlines()
    password = lines[0] if lines else b""
    if not password or len(password) > PASSWORD_BYTES_MAX:
        raise PasswordError(f"password file {path} must hold one line of 1..{PASSWORD_BYTES_MAX} bytes")
    return password
