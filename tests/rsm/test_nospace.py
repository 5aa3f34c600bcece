"""A full disk raises the NOSPACE alarm instead of stopping the server, end to end.

How: one replica of a real three-replica group keeps its directory on a tiny tmpfs mounted
by the test (root only; skipped otherwise). The test fills that file system, drives writes
through another replica until the full one reports `"alarm": "nospace"`, then checks that it
refuses client ops with ErrNoSpace at once while the rest of the group serves them, that the alarm clears by itself once
space is freed, that a SIGKILL and restart on a full disk does not crash (no crash loop), and
that every acknowledged write is intact at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from diskv_trio.cli._health import server_health
from diskv_trio.cluster import LocalCluster, open_local_cluster
from diskv_trio.net import RpcRemoteError, RpcUnavailable

pytestmark = pytest.mark.slow

TMPFS_BYTES = 4 * 1024 * 1024
DEADLINE_S = 30


@contextlib.contextmanager
def tiny_tmpfs(mount_point: Path) -> Iterator[Path]:
    mount_point.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a filler file until the file system is full."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, bytes(64 * 1024))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        for _ in range(64):  # and the last partial pages
            try:
                os.write(fd, b"x")
            except OSError:
                break
    finally:
        os.close(fd)
    return filler


class Writer:
    """Direct `kv.op` calls, so a test chooses which replica is asked."""

    def __init__(self, cluster: LocalCluster, gid: int) -> None:
        self.cluster = cluster
        self.addresses = cluster.group_addresses(gid)
        self.seq = 0
        self.acknowledged: dict[str, str] = {}

    async def call(self, replica: int, op: dict[str, Any]) -> dict[str, Any]:
        return await self.cluster.pool.call(self.addresses[replica], "kv.op", op, deadline_s=10)

    async def put(self, replica: int, key: str, value: str) -> None:
        self.seq += 1
        op = {"op": "put", "key": key, "value": value, "client": "nospace", "seq": self.seq}
        reply = await self.call(replica, op)
        while reply["err"] == "ErrWrongGroup":  # the group has not taken its shards yet
            await trio.sleep(0.1)
            reply = await self.call(replica, op)
        assert reply["err"] == "OK"
        self.acknowledged[key] = value

    async def get(self, replica: int, key: str) -> str:
        reply = await self.call(replica, {"op": "get", "key": key})
        assert reply["err"] == "OK"
        value = reply["value"]
        return value.decode() if isinstance(value, bytes) else str(value)


async def alarm_of(cluster: LocalCluster, name: str) -> Any:
    return (await cluster.status(name)).get("alarm")


async def test_a_full_disk_pauses_writes_and_they_resume_when_space_returns(short_tmp: Path) -> None:
    data_dir = short_tmp / "c"
    with tiny_tmpfs(data_dir / "g100-0") as small:
        async with open_local_cluster(data_dir, groups=1, replicas=3, cluster="test") as cluster:
            gid = cluster.gids[0]
            await cluster.join(gid)
            full = cluster.group_servers(gid)[0]
            kv = Writer(cluster, gid)
            with trio.fail_after(DEADLINE_S):
                for i in range(5):
                    await kv.put(1, f"k{i}", f"v{i}")

                filler = fill(small)
                while await alarm_of(cluster, full) != "nospace":
                    await kv.put(1, f"k{len(kv.acknowledged)}", "while full")
                    await trio.sleep(0.05)
                status = await cluster.status(full)
                assert server_health({"answers": True, "address": "a"} | status, {}).alarm == "nospace"
                with pytest.raises(RpcRemoteError) as raised:
                    await kv.put(0, "refused", "x")
                assert raised.value.code == "ErrNoSpace"
                assert "disk is full" in raised.value.message
                with pytest.raises(RpcRemoteError) as raised:
                    await kv.get(0, "k0")  # at once, not after a timeout: it needs the log here
                assert raised.value.code == "ErrNoSpace"
                assert await kv.get(1, "k0") == "v0"  # the rest of the group serves
                assert (await cluster.status(full))["serving"]  # applied-state reads go on

                filler.unlink()
                # Another process's state: polling (under the deadline) is the only way.
                while await alarm_of(cluster, full) is not None:  # noqa: ASYNC110
                    await trio.sleep(0.1)
                await kv.put(0, "after", "space returned")

                filler = fill(small)
                await cluster.kill(full)
                await cluster.restart(full)
                for i in range(20):  # the group goes on; the restarted replica must not die
                    await kv.put(1, f"restart{i}", str(i))
                    await trio.sleep(0.1)
                spec = cluster.spec(full)
                assert spec.process is not None and spec.process.returncode is None
                await cluster.status(full)

                filler.unlink()
                for key, value in kv.acknowledged.items():
                    while True:
                        try:
                            assert await kv.get(0, key) == value
                            break
                        except (RpcRemoteError, RpcUnavailable):
                            await trio.sleep(0.1)
