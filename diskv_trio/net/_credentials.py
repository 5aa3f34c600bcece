"""Cluster credentials: one secret key per role, each in a file only its owner can read.

A credentials directory holds ``peer.key``, ``operator.key`` and ``client.key`` (64 hex
characters each). Servers need all three (to check every role); an operator's machine needs
``operator.key``, a client's only ``client.key``. Keys are never passed on a command line:
tools read them from the directory named by ``--credentials`` or ``DISKV_CREDENTIALS``, or
from the ``credentials`` folder that `diskv cluster up` creates beside ``cluster.json``.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from ._roles import Role

if TYPE_CHECKING:
    from ._tls import Tls

CREDENTIALS_ENV = "DISKV_CREDENTIALS"
KEY_BYTES = 32


class CredentialsError(Exception):
    """A credentials directory or key file is missing, unsafe or malformed."""


def key_path(directory: Path, role: Role) -> Path:
    return directory / f"{role.value}.key"


@dataclass(frozen=True)
class Credentials:
    """The keys this process holds, by role, and its TLS settings.

    `tls` travels with the keys so that every server and pool that is handed credentials
    serves and calls over TLS when the process was given a TLS directory (None: plain text).
    """

    keys: Mapping[Role, bytes] = field(default_factory=dict)
    tls: Tls | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def key(self, role: str) -> bytes | None:
        for each, key in self.keys.items():
            if each.value == role:
                return key
        return None

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(roles={sorted(r.value for r in self.keys)}, tls={self.tls is not None})"


def create_credentials(directory: Path) -> Credentials:
    """Create the directory (0700) and any missing key file (0600, random); load all three.

    Existing keys are kept, so re-running `cluster up` on a directory keeps its cluster.

    Raises:
        CredentialsError: the directory or a key file is unsafe or malformed.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory, is_dir=True)
    for role in Role:
        path = key_path(directory, role)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(KEY_BYTES) + "\n")
            out.flush()
            os.fsync(out.fileno())
    return load_credentials(directory, required=tuple(Role))


def load_credentials(directory: Path, *, required: tuple[Role, ...] = ()) -> Credentials:
    """Load every key file found in `directory`.

    Raises:
        CredentialsError: a key in `required` is missing, no key at all is found, or a file
            is readable by others, not a regular file, or not a hex key.
    """
    if not directory.is_dir():
        raise CredentialsError(f"credentials directory {directory} does not exist")
    keys: dict[Role, bytes] = {}
    for role in Role:
        path = key_path(directory, role)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CredentialsError(f"cannot open {path}: {exc.strerror}") from None
        with os.fdopen(fd) as handle:
            check_private_file(handle.fileno(), path)
            text = handle.read(4 * KEY_BYTES).strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise CredentialsError(f"{path} does not hold a {2 * KEY_BYTES}-hex-digit key")
        keys[role] = key
    missing = [role.value for role in required if role not in keys]
    if missing:
        raise CredentialsError(f"{directory} lacks {', '.join(m + '.key' for m in missing)}")
    if not keys:
        raise CredentialsError(f"{directory} holds no key file (peer.key, operator.key, client.key)")
    return Credentials(keys)


def _check_private(path: Path, *, is_dir: bool) -> None:
    info = os.lstat(path)
    kind_ok = stat.S_ISDIR(info.st_mode) if is_dir else stat.S_ISREG(info.st_mode)
    if not kind_ok:
        raise CredentialsError(f"{path} is not a {'directory' if is_dir else 'regular file'}")
    _check_owner_and_mode(info, path)


def check_private_file(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"{path} is not a regular file")
    _check_owner_and_mode(info, path)


def _check_owner_and_mode(info: os.stat_result, path: Path) -> None:
    if info.st_uid != os.geteuid():
        raise CredentialsError(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        raise CredentialsError(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o});"
            f" run: chmod {'700' if stat.S_ISDIR(info.st_mode) else '600'} {path}"
        )
