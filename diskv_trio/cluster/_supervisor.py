"""A local cluster: shardmasters and replica groups as separate processes on Unix sockets.

Rules kept here:
- Each server is its own process, started with `python -m diskv_trio`, with its own data
  directory and log file under the cluster's data directory; sockets live in a short
  directory so Unix socket paths stay within the kernel's limit.
- A server is given `--bootstrap` only on the very first start of its directory; every
  later start, after a kill or a lost disk alike, is a restart.
- Children die with the supervisor (Linux parent-death signal), and closing the cluster
  stops every process it started: SIGTERM, then SIGKILL for any that linger.
- One supervisor per data directory (a lock held while the cluster is open); everything it
  creates is private to its user, and a socket directory outside the data directory is used
  only if we created it 0o700 (or it already is ours and 0o700).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import trio

from diskv_trio._dirlock import DirectoryInUseError, DirectoryLock, lock_directory
from diskv_trio._discovery import (
    CLUSTER_FILE_NAME,
    CREDENTIALS_DIR_NAME,
    DEFAULT_CLUSTER_NAME,
    TLS_DIR_NAME,
)
from diskv_trio._private_files import (
    UnsafeDirectoryError,
    make_private_directory,
    private_shared_directory,
)
from diskv_trio.kvproto import DEFAULT_SHARDING, Sharding
from diskv_trio.net import (
    Credentials,
    Identity,
    NetError,
    Role,
    RpcPool,
    create_credentials,
    load_tls,
    open_rpc_pool,
)
from diskv_trio.rsm import IDENTITY_FILE_NAME
from diskv_trio.rsm._identity import write_atomically
from diskv_trio.shardmaster import ShardmasterClerk

from ._certificates import create_tls_files, server_tls_dir
from ._processes import start_process
from ._spec import ServerSpec

log = logging.getLogger("diskv.cluster")

SOCKET_PATH_BYTES_MAX = 100
"""AF_UNIX paths are limited to 107 bytes on Linux; keep a margin for socket names."""

READY_POLL_S = 0.02
"""How often a starting server is asked whether it answers yet."""

READY_TIMEOUT_S = 30.0
"""A server that does not answer within this long after its start is reported as failed."""

STOP_GRACE_S = 5.0
"""How long a server gets to exit after SIGTERM before it is killed."""

FIRST_GID = 100


class ClusterError(Exception):
    """Raised when a server of the local cluster fails to start or is unknown."""


class Placement(Protocol):
    """Where the servers run, when not on Unix sockets of this host: each its own address, and
    the command that starts it there (network namespaces: `tools/crash/_netns_cluster.py`)."""

    def address(self, name: str) -> str:
        """The address of the server whose socket would be named `name` (``m0``, ``g100-1``)."""
        ...

    def command(self, address: str, argv: list[str]) -> list[str]:
        """`argv` changed to run the server at `address` where that address lives."""
        ...


def _socket_dir(data_dir: Path) -> Path:
    """`DATA/sock`, or, when that path is too long for socket names, a directory in the
    temporary directory named by our uid and a digest of it (created and checked private by
    `_make_socket_dir`)."""
    candidate = data_dir.resolve() / "sock"
    if len(str(candidate)) + 16 <= SOCKET_PATH_BYTES_MAX:
        return candidate
    digest = hashlib.sha256(str(candidate).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"diskv-{os.getuid()}-{digest}"


def _make_socket_dir(socket_dir: Path, data_dir: Path) -> None:
    """Create the socket directory private; refuse a shared-directory one not ours alone.

    Raises:
        ClusterError: the directory exists in a shared place and is not private to us.
    """
    if socket_dir.parent == data_dir:
        make_private_directory(socket_dir)
        return
    try:
        private_shared_directory(socket_dir)
    except UnsafeDirectoryError as exc:
        raise ClusterError(f"socket directory: {exc}") from None


class LocalCluster:
    """Starts, kills, restarts and stops the servers of a cluster on this machine."""

    def __init__(
        self,
        data_dir: Path,
        *,
        groups: int = 2,
        replicas: int = 3,
        masters: int = 3,
        cluster: str = DEFAULT_CLUSTER_NAME,
        unreliable: bool = False,
        server_arguments: Sequence[str] = (),
        sharding: Sharding = DEFAULT_SHARDING,
        metrics_port_base: int | None = None,
        tls: bool = False,
        placement: Placement | None = None,
    ) -> None:
        if groups < 0 or replicas < 1 or masters < 1:
            raise ValueError("need at least one shardmaster and one replica per group")
        self.data_dir = data_dir.resolve()
        self.credentials_dir = self.data_dir / CREDENTIALS_DIR_NAME
        self.credentials: Credentials | None = None
        self.tls_dir = self.data_dir / TLS_DIR_NAME if tls else None
        """With `tls`: the local CA and every certificate (see `_certificates`)."""
        self.cluster = cluster
        self.placement = placement
        self.socket_dir = _socket_dir(self.data_dir)
        self.server_arguments = tuple(server_arguments)
        self.sharding = sharding
        """The shard count and scheme the shardmasters give the cluster at its first join."""
        self.metrics_port_base = metrics_port_base
        """Server i (in start order: masters, then groups) serves metrics on this + i."""
        self.servers: dict[str, ServerSpec] = {}
        self.gids: list[int] = []
        master_addresses = [self._address(f"m{i}") for i in range(masters)]
        for i in range(masters):
            self._add(f"master-{i}", "shardmaster", 0, i, master_addresses, unreliable=False)
        for g in range(groups):
            gid = FIRST_GID + g
            self.add_group(gid, replicas, unreliable=unreliable)
        self.masters = master_addresses
        self.supervisor_address: str | None = None
        self._pool: RpcPool | None = None

    def _address(self, name: str) -> str:
        if self.placement is not None:
            return self.placement.address(name)
        return f"unix:{self.socket_dir / (name + '.sock')}"

    def _add(self, name: str, role: str, gid: int, me: int, peers: list[str], *, unreliable: bool) -> None:
        self.servers[name] = ServerSpec(
            name=name,
            role=role,
            gid=gid,
            me=me,
            address=peers[me],
            directory=self.data_dir / name,
            peers=peers,
            log_path=self.data_dir / "logs" / f"{name}.log",
            unreliable=unreliable,
            extra_arguments=self.server_arguments + self._role_arguments(role),
            metrics_port=None if self.metrics_port_base is None else self.metrics_port_base + len(self.servers),
        )

    def _role_arguments(self, role: str) -> tuple[str, ...]:
        if role != "shardmaster":
            return ()
        return ("--shards", str(self.sharding.count), "--shard-scheme", self.sharding.scheme)

    def add_group(self, gid: int, replicas: int, *, unreliable: bool = False) -> list[str]:
        """Describe (not start) a new replica group; return its server names."""
        addresses = [self._address(f"g{gid}-{j}") for j in range(replicas)]
        names = []
        for j in range(replicas):
            name = f"g{gid}-{j}"
            self._add(name, "shardkv", gid, j, addresses, unreliable=unreliable)
            names.append(name)
        self.gids.append(gid)
        return names

    def group_servers(self, gid: int) -> list[str]:
        return [s.name for s in self.servers.values() if s.role == "shardkv" and s.gid == gid]

    def group_addresses(self, gid: int) -> list[str]:
        return [self.servers[n].address for n in self.group_servers(gid)]

    def spec(self, name: str) -> ServerSpec:
        try:
            return self.servers[name]
        except KeyError:
            raise ClusterError(f"no server named {name!r}; known: {', '.join(self.servers)}") from None

    def describe(self) -> dict[str, Any]:
        """What `cluster.json` records: enough for clients and `diskv status` to find everything."""
        return {
            "cluster": self.cluster,
            "masters": self.masters,
            "supervisor": self.supervisor_address,
            "tls": None if self.tls_dir is None else str(self.tls_dir),
            "groups": {str(gid): self.group_addresses(gid) for gid in self.gids},
            "servers": {
                s.name: {
                    "role": s.role,
                    "gid": s.gid,
                    "address": s.address,
                    "dir": str(s.directory),
                    "log": str(s.log_path),
                    "metrics": None if s.metrics_port is None else f"http://127.0.0.1:{s.metrics_port}/metrics",
                    "pid": s.process.pid if s.process is not None and s.process.returncode is None else None,
                }
                for s in self.servers.values()
            },
        }

    def write_description(self) -> Path:
        path = self.data_dir / CLUSTER_FILE_NAME
        write_atomically(path, (json.dumps(self.describe(), indent=2) + "\n").encode())
        return path

    # ---- process control --------------------------------------------------------

    @property
    def pool(self) -> RpcPool:
        if self._pool is None:
            raise ClusterError("the cluster is not open")
        return self._pool

    def is_running(self, name: str) -> bool:
        process = self.spec(name).process
        return process is not None and process.returncode is None

    async def start(self, name: str, *, wait: bool = True) -> None:
        """Start server `name` (bootstrapping only on its directory's very first start)."""
        spec = self.spec(name)
        if self.is_running(name):
            raise ClusterError(f"{name} is already running")
        _make_socket_dir(self.socket_dir, self.data_dir)
        first_start = spec.starts == 0 and not (spec.directory / IDENTITY_FILE_NAME).exists() and not (
            spec.directory.exists() and any(spec.directory.iterdir())
        )
        make_private_directory(spec.directory)
        tls_dir = None
        if self.tls_dir is not None:
            create_tls_files(self.tls_dir, [name])  # a group added later gets its certificates
            tls_dir = server_tls_dir(self.tls_dir, name)
        argv = spec.argv(self.masters, self.cluster, first_start, self.credentials_dir, tls_dir)
        if self.placement is not None:
            argv = self.placement.command(spec.address, argv)
        spec.process = await start_process(argv, spec.stderr_path)
        spec.starts += 1
        if wait:
            await self.wait_answering(name)

    async def wait_answering(self, name: str) -> None:
        """Return once `name` answers RPCs; raise if it exits or stays silent too long."""
        spec = self.spec(name)
        with trio.move_on_after(READY_TIMEOUT_S):
            while True:
                if spec.process is None or spec.process.returncode is not None:
                    tail = _tail(spec.stderr_path) + "\n" + _tail(spec.log_path)
                    raise ClusterError(f"{name} exited during start-up; its log ends:\n{tail}")
                try:
                    await self.pool.call(spec.address, "rsm.status", {}, deadline_s=0.5)
                    return
                except NetError:
                    await trio.sleep(READY_POLL_S)
        raise ClusterError(f"{name} did not answer within {READY_TIMEOUT_S:g} s")

    async def kill(self, name: str, *, lose_disk: bool = False) -> None:
        """SIGKILL `name` and wait for it; with `lose_disk`, empty its directory too."""
        spec = self.spec(name)
        if spec.process is not None and spec.process.returncode is None:
            spec.process.kill()
            await spec.process.wait()
        if lose_disk:
            shutil.rmtree(spec.directory, ignore_errors=True)
            make_private_directory(spec.directory)

    async def restart(self, name: str, *, wait: bool = True) -> None:
        """Start `name` again on its directory (a restart, never a bootstrap)."""
        spec = self.spec(name)
        spec.starts = max(spec.starts, 1)
        await self.start(name, wait=wait)

    async def terminate(self, name: str) -> None:
        """Stop `name` cleanly (SIGTERM), killing it if it lingers."""
        spec = self.spec(name)
        process = spec.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE_S):
            await process.wait()
            return
        process.kill()
        await process.wait()

    async def start_all(self) -> None:
        """Start every server (shardmasters first) and wait until each answers."""
        async with trio.open_nursery() as nursery:
            for spec in self.servers.values():
                if spec.role == "shardmaster" and not self.is_running(spec.name):
                    nursery.start_soon(self.start, spec.name)
        async with trio.open_nursery() as nursery:
            for spec in self.servers.values():
                if spec.role == "shardkv" and not self.is_running(spec.name):
                    nursery.start_soon(self.start, spec.name)

    async def stop_all(self) -> None:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for spec in self.servers.values():
                    nursery.start_soon(self.terminate, spec.name)

    def kill_all_now(self) -> None:
        """Synchronous last resort: SIGKILL every live child."""
        for spec in self.servers.values():
            if spec.process is not None and spec.process.returncode is None:
                spec.process.kill()

    # ---- configuration and faults ----------------------------------------------------

    def shardmaster_clerk(self) -> ShardmasterClerk:
        return ShardmasterClerk(self.masters, self.pool)

    async def join(self, gid: int) -> None:
        await self.shardmaster_clerk().join(gid, self.group_addresses(gid))

    async def leave(self, gid: int) -> None:
        await self.shardmaster_clerk().leave(gid)

    async def set_faults(
        self,
        name: str,
        *,
        unreliable: bool | None = None,
        cut: Sequence[str] | None = None,
        deaf: bool | None = None,
    ) -> dict[str, Any]:
        """Change a running server's fault injection through its admin call."""
        args: dict[str, Any] = {}
        if unreliable is not None:
            args["unreliable"] = unreliable
        if cut is not None:
            args["cut"] = list(cut)
        if deaf is not None:
            args["deaf"] = deaf
        return await self.pool.call(self.spec(name).address, "admin.faults", args, deadline_s=5.0)

    async def status(self, name: str) -> dict[str, Any]:
        return await self.pool.call(self.spec(name).address, "rsm.status", {}, deadline_s=2.0)

    def disk_bytes(self, names: Sequence[str] | None = None) -> int:
        """Bytes in the data directories of `names` (default: every server), files only."""
        total = 0
        for name in names if names is not None else list(self.servers):
            for path in self.spec(name).directory.rglob("*"):
                if path.is_file():
                    total += path.stat().st_size
        return total


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _lock_data_dir(cluster: LocalCluster) -> DirectoryLock:
    """Hold the data directory for this supervisor alone.

    Raises:
        ClusterError: another `cluster up` (or demo) runs on it, named by pid.
    """
    try:
        return lock_directory(cluster.data_dir, f"diskv cluster up, cluster {cluster.cluster!r}")
    except DirectoryInUseError as exc:
        raise ClusterError(str(exc)) from None


@asynccontextmanager
async def open_local_cluster(
    data_dir: Path, *, start: bool = True, **options: Any
) -> AsyncIterator[LocalCluster]:
    """A local cluster whose processes are all stopped when the block exits, however it exits."""
    cluster = LocalCluster(data_dir, **options)
    lock = _lock_data_dir(cluster)
    try:
        make_private_directory(cluster.data_dir)
        _make_socket_dir(cluster.socket_dir, cluster.data_dir)  # refused before any use
        credentials = create_credentials(cluster.credentials_dir)
        if cluster.tls_dir is not None:
            create_tls_files(cluster.tls_dir, cluster.servers)
            credentials = replace(credentials, tls=load_tls(cluster.tls_dir))
        cluster.credentials = credentials
    except BaseException:
        lock.release()
        raise
    try:
        async with open_rpc_pool(
            Identity(cluster.cluster, Role.OPERATOR, "supervisor"), credentials=cluster.credentials
        ) as pool:
            cluster._pool = pool
            try:
                if start:
                    await cluster.start_all()
                    cluster.write_description()
                yield cluster
            finally:
                await cluster.stop_all()
                cluster._pool = None
    finally:
        cluster.kill_all_now()
        if cluster.socket_dir != cluster.data_dir / "sock":
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)
        lock.release()
