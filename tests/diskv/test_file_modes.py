"""Everything servers and the supervisor write is private: files 0600, directories 0700.

How: run a real local cluster (its pytest process keeps the usual umask 022, the servers set
their own), write through it, lose one replica's disk so a `lost-*` folder and REASON file
appear, and walk the whole data directory. A wider file left by an older version is tightened
at the server's next start. The socket directory used when the data directory's path is too
long is refused when it already exists and is not ours alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import trio

from diskv_trio._private_files import UnsafeDirectoryError, private_shared_directory
from diskv_trio.cluster import ClusterError, open_local_cluster
from diskv_trio.cluster._supervisor import _socket_dir

pytestmark = pytest.mark.slow


def wide_entries(root: Path) -> list[str]:
    """Paths under `root` (itself included) that group or others may access."""
    wide = []
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        if stat.S_IMODE(info.st_mode) & 0o077:
            wide.append(f"{path} {stat.S_IMODE(info.st_mode):o}")
    return wide


async def test_every_file_and_directory_of_a_cluster_is_private(short_tmp: Path) -> None:
    data_dir = short_tmp / "c"
    async with open_local_cluster(data_dir, groups=1, replicas=3, cluster="test") as cluster:
        gid = cluster.gids[0]
        await cluster.join(gid)
        names = cluster.group_servers(gid)
        op = {"op": "put", "key": "k", "value": "v", "client": "modes", "seq": 1}
        with trio.fail_after(30):
            await cluster.pool.call(cluster.group_addresses(gid)[0], "kv.op", op, deadline_s=20)
        cluster.write_description()
        legacy = cluster.spec(names[1]).directory / "legacy-notes"
        await cluster.kill(names[1])
        legacy.write_text("from an older version")
        legacy.chmod(0o644)
        await cluster.restart(names[1])
        await cluster.kill(names[2])
        (cluster.spec(names[2]).directory / "IDENTITY").unlink()  # a lost disk: moved aside
        await cluster.restart(names[2])
        assert list(cluster.spec(names[2]).directory.glob("lost-*/REASON"))
        assert (data_dir / "cluster.json").exists()
        assert list((data_dir / "logs").glob("*.log"))
        assert wide_entries(data_dir) == []
        assert wide_entries(cluster.socket_dir) == []


def test_the_socket_directory_in_a_shared_place_must_be_ours_alone(short_tmp: Path) -> None:
    shared = short_tmp / "shared"
    shared.mkdir()
    created = private_shared_directory(shared / "fresh")
    assert stat.S_IMODE(created.stat().st_mode) == 0o700
    open_to_others = shared / "open"
    open_to_others.mkdir(mode=0o755)
    open_to_others.chmod(0o755)
    with pytest.raises(UnsafeDirectoryError, match="mode 755"):
        private_shared_directory(open_to_others)
    link = shared / "link"
    link.symlink_to(created)
    with pytest.raises(UnsafeDirectoryError, match="not a directory"):
        private_shared_directory(link)
    long_dir = short_tmp / ("x" * 120)
    assert _socket_dir(long_dir).name.startswith(f"diskv-{os.getuid()}-")


async def test_a_cluster_refuses_a_socket_directory_that_is_not_private(short_tmp: Path) -> None:
    data_dir = short_tmp / ("long-" * 20)
    squatted = _socket_dir(data_dir)
    squatted.mkdir(mode=0o777)
    squatted.chmod(0o777)
    try:
        with pytest.raises(ClusterError, match="refusing to use it"):
            async with open_local_cluster(data_dir, groups=0, masters=1, cluster="test"):
                pass
        assert squatted.is_dir()  # refused, never removed or used
    finally:
        squatted.rmdir()
