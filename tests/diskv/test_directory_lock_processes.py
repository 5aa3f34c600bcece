"""One process per directory: a second `cluster up`, or a second server on a live server's
directory, fails at once with one line naming the running process, and takes nothing from it.

How: a real local cluster runs; the second start is a real `python -m diskv_trio` process;
afterwards the first servers must still answer on the same socket files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from diskv_trio.cluster import open_local_cluster

pytestmark = pytest.mark.slow

SECOND_START_TIMEOUT_S = 30


async def run_diskv(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `argv` (a `python -m diskv_trio` command) to its end; return (status, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "DISKV_MASTERS"}
    with trio.fail_after(SECOND_START_TIMEOUT_S):
        result = await trio.run_process(
            argv, cwd=cwd, env=env, capture_stdout=True, capture_stderr=True, check=False
        )
    return result.returncode, result.stderr.decode()


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    return lines[-1]


async def test_a_second_server_on_a_live_directory_is_refused(short_tmp: Path) -> None:
    async with open_local_cluster(short_tmp / "c", groups=1, replicas=3, cluster="test") as cluster:
        name = cluster.group_servers(cluster.gids[0])[0]
        spec = cluster.spec(name)
        assert spec.process is not None
        socket_path = Path(spec.address.removeprefix("unix:"))
        inode_before = socket_path.stat().st_ino
        argv = spec.argv(cluster.masters, cluster.cluster, False, cluster.credentials_dir)
        status, stderr = await run_diskv(argv, short_tmp)
        assert status != 0
        line = one_line(stderr)
        assert line == (
            f"diskv: {spec.directory} is in use by pid {spec.process.pid} (shardkv-100-0); "
            "stop it first"
        ), stderr
        assert socket_path.stat().st_ino == inode_before  # its socket was not taken over
        assert (await cluster.status(name))["pid"] == spec.process.pid


async def test_a_second_cluster_up_on_a_live_directory_is_refused(short_tmp: Path) -> None:
    data_dir = short_tmp / "c"
    async with open_local_cluster(data_dir, groups=1, replicas=3, cluster="test") as cluster:
        sockets = {n: Path(s.address.removeprefix("unix:")).stat().st_ino for n, s in cluster.servers.items()}
        argv = [sys.executable, "-m", "diskv_trio", "cluster", "up", "--dir", str(data_dir), "--groups", "1"]
        status, stderr = await run_diskv(argv, short_tmp)
        assert status != 0
        line = one_line(stderr)
        assert line.startswith(f"diskv: {data_dir} is in use by pid {os.getpid()} (diskv cluster up")
        assert line.endswith("stop it first"), stderr
        for name, spec in cluster.servers.items():
            assert Path(spec.address.removeprefix("unix:")).stat().st_ino == sockets[name]
            assert (await cluster.status(name))["pid"] == spec.process.pid  # type: ignore[union-attr]
