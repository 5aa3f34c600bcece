"""One server of the local cluster: where it lives and the command line that starts it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from ._processes import python_module_argv


@dataclass
class ServerSpec:
    """One server of the local cluster."""

    name: str
    role: str  # "shardmaster" or "shardkv"
    gid: int
    me: int
    address: str
    directory: Path
    peers: list[str]
    log_path: Path
    unreliable: bool = False
    process: trio.Process | None = None
    starts: int = 0
    extra_arguments: tuple[str, ...] = ()
    metrics_port: int | None = None

    @property
    def stderr_path(self) -> Path:
        """Where the process's own output goes: start-up failures and crashes (small)."""
        return self.log_path.with_suffix(".stderr")

    def argv(
        self,
        masters: Sequence[str],
        cluster: str,
        bootstrap: bool,
        credentials_dir: Path,
        tls_dir: Path | None = None,
    ) -> list[str]:
        args = [
            *self.extra_arguments,
            "--log-file",
            str(self.log_path),
            "--credentials",
            str(credentials_dir),
            "--me",
            str(self.me),
            "--peers",
            ",".join(self.peers),
            "--dir",
            str(self.directory),
            "--cluster",
            cluster,
        ]
        if bootstrap:
            args.append("--bootstrap")
        if tls_dir is not None:
            args += ["--tls-dir", str(tls_dir)]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port)]
        if self.unreliable:
            args.append("--unreliable")
        if self.role == "shardmaster":
            return python_module_argv("shardmaster", *args)
        return python_module_argv("serve", "--gid", str(self.gid), *args, "--masters", ",".join(masters))
