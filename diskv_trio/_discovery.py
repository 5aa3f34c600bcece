"""Finding the shardmasters: explicit addresses, `DISKV_MASTERS`, or the local cluster.

`diskv cluster up` writes `cluster.json` into its data directory (`./diskv-data` by default,
else `DISKV_DIR` or `--dir`); clients given the same directory find it without any other flag.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diskv_trio.net import (
    CREDENTIALS_ENV,
    TLS_DIR_ENV,
    Credentials,
    CredentialsError,
    Tls,
    load_credentials,
    load_tls,
)

DEFAULT_DATA_DIR = Path("diskv-data")
DATA_DIR_ENV = "DISKV_DIR"
CLUSTER_FILE_NAME = "cluster.json"
MASTERS_ENV = "DISKV_MASTERS"
CREDENTIALS_DIR_NAME = "credentials"
TLS_DIR_NAME = "tls"
DEFAULT_CLUSTER_NAME = "diskv"


class DiscoveryError(Exception):
    """Raised when no shardmaster addresses are given and no local cluster is found."""


def default_data_dir(data_dir: Path | None = None) -> Path:
    """The local cluster's directory: `data_dir`, else `DISKV_DIR`, else `./diskv-data`."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


def read_cluster_file(data_dir: Path | None = None) -> dict[str, Any] | None:
    """The local cluster's `cluster.json` as written by `cluster up`; None if absent or unreadable."""
    path = default_data_dir(data_dir) / CLUSTER_FILE_NAME
    try:
        described = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return described if isinstance(described, dict) else None


def split_addresses(text: str) -> list[str]:
    """Parse `A0,A1,A2` into a list, rejecting empty entries."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"expected comma-separated addresses, got {text!r}")
    return parts


def find_masters(masters: Sequence[str] | str | None = None, *, data_dir: Path | None = None) -> list[str]:
    """The shardmaster addresses to use, in order of precedence.

    Raises:
        DiscoveryError: nothing given, `DISKV_MASTERS` unset and no `cluster.json` found.
    """
    if isinstance(masters, str):
        return split_addresses(masters)
    if masters:
        return list(masters)
    env = os.environ.get(MASTERS_ENV)
    if env:
        return split_addresses(env)
    path = default_data_dir(data_dir) / CLUSTER_FILE_NAME
    try:
        described = json.loads(path.read_text())
    except FileNotFoundError:
        raise DiscoveryError(
            f"no shardmasters given: pass --masters, set {MASTERS_ENV}, or point --dir / "
            f"{DATA_DIR_ENV} at the directory of a `diskv cluster up` ({path} not found)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DiscoveryError(f"cannot read {path}: {exc}") from exc
    found = described.get("masters")
    if not isinstance(found, list) or not found or not all(isinstance(a, str) for a in found):
        raise DiscoveryError(f"{path} lists no shardmasters")
    return found


def find_cluster_name(data_dir: Path | None = None) -> str:
    """The cluster name from the local cluster file, or the default."""
    name = (read_cluster_file(data_dir) or {}).get("cluster")
    return name if isinstance(name, str) and name else DEFAULT_CLUSTER_NAME


def find_credentials(
    explicit: Path | None = None, *, data_dir: Path | None = None, tls_dir: Path | None = None
) -> Credentials | None:
    """The keys this process holds: `explicit`, else `DISKV_CREDENTIALS`, else the
    `credentials` folder of the local cluster; with the TLS settings `find_tls` finds.
    None when neither keys nor TLS settings are found.

    Raises:
        CredentialsError: a directory was named but is missing, unsafe or holds no key
            (`TlsError`, a kind of it, for a TLS directory).
    """
    keys = _find_keys(explicit, data_dir)
    tls = find_tls(tls_dir, data_dir=data_dir)
    if tls is None:
        return keys
    return Credentials(keys.keys if keys is not None else {}, tls=tls)


def find_tls(explicit: Path | None = None, *, data_dir: Path | None = None) -> Tls | None:
    """The TLS settings of a caller: `explicit`, else `DISKV_TLS_DIR`, else the directory
    the local cluster's `cluster.json` names (written by `cluster up --tls`); None (plain
    text) when none is set.

    Raises:
        TlsError: the directory named cannot be used.
    """
    if explicit is not None:
        return load_tls(explicit)
    env = os.environ.get(TLS_DIR_ENV)
    if env:
        return load_tls(Path(env))
    local = (read_cluster_file(data_dir) or {}).get("tls")
    return load_tls(Path(local)) if isinstance(local, str) and local else None


def _find_keys(explicit: Path | None, data_dir: Path | None) -> Credentials | None:
    if explicit is not None:
        return load_credentials(explicit)
    env = os.environ.get(CREDENTIALS_ENV)
    if env:
        return load_credentials(Path(env))
    local = default_data_dir(data_dir) / CREDENTIALS_DIR_NAME
    if local.exists():
        return load_credentials(local)
    return None


__all__ = [
    "CLUSTER_FILE_NAME",
    "CREDENTIALS_DIR_NAME",
    "CredentialsError",
    "DEFAULT_CLUSTER_NAME",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "DiscoveryError",
    "TLS_DIR_NAME",
    "default_data_dir",
    "find_cluster_name",
    "find_credentials",
    "find_tls",
    "find_masters",
    "read_cluster_file",
    "split_addresses",
]
