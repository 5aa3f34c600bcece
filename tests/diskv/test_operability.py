"""Operating a real local cluster through the command line: verdicts, wedges, explained waits.

Checks the mistaken `admin join` of issue 13 end to end: a join to servers that do not exist
is refused; forced, `status` turns `unavailable` (exit 2) naming group 102, and a `get` on a
moved shard says on stderr what it waits for before its timeout line. Also: `cluster up`
refuses a directory whose configuration holds groups it would not start. And the way out:
after a forced join of a group nobody runs and its `admin leave`, the shards it was given
come back from the groups that last held them, every key with its value.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster
from diskv_trio.shardmaster import Config

pytestmark = pytest.mark.slow


async def diskv(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run `python -m diskv_trio ARGS`; return (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISKV_")}
    result = await trio.run_process(
        [sys.executable, "-m", "diskv_trio", *args], cwd=cwd, env=env,
        capture_stdout=True, capture_stderr=True, check=False,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_a_mistaken_join_is_refused_and_a_forced_one_is_explained(short_tmp: Path) -> None:
    data = short_tmp / "c"
    nowhere = ",".join(f"unix:{short_tmp}/nope{i}.sock" for i in range(3))
    async with open_local_cluster(data, groups=2, replicas=3) as cluster:
        for gid in cluster.gids:
            await cluster.join(gid)
        cluster.write_description()
        d = ("--dir", str(data))

        # Each group elects its leader and takes its shards over within a second or so.
        result = (-1, "", "status never finished")
        with trio.move_on_after(15):
            # Another process's verdict: polling (under the deadline) is the only way.
            while (result := await diskv("status", *d, cwd=short_tmp))[0] != 0:  # noqa: ASYNC110
                await trio.sleep(0.2)
        status, out, err = result
        assert status == 0, out + err
        assert out.startswith("HEALTHY")
        assert "g100-1" in out and "master-0" in out  # the names `cluster kill` takes

        before = (await cluster.shardmaster_clerk().query(-1)).num
        status, out, err = await diskv("admin", "join", "102", nowhere, *d, cwd=short_tmp)
        assert status == 1
        assert "refused: only 0 of 3 servers answer as group 102" in err
        assert "Traceback" not in err
        assert (await cluster.shardmaster_clerk().query(-1)).num == before

        status, out, err = await diskv("admin", "join", "102", nowhere, "--force", *d, cwd=short_tmp)
        assert status == 0, err
        config: Config = await cluster.shardmaster_clerk().query(-1)
        moved = [s for s, g in enumerate(config.shards) if g == 102]
        assert moved

        status, out, err = await diskv("status", "--json", *d, cwd=short_tmp)
        assert status == 2, out + err
        health = json.loads(out)
        assert health["verdict"] == "unavailable"
        assert {int(s) for s in health["unserved"]} >= set(moved)
        assert "group 102 has 0 of 3 replicas up" in health["unserved"][str(moved[0])]

        key = next(k for k in (f"key{i}" for i in range(10_000)) if config.shard_of(k.encode()) in moved)
        status, out, err = await diskv("get", key, "--timeout", "4", *d, cwd=short_tmp)
        assert status == 1
        lines = err.splitlines()
        assert lines[0].startswith("diskv: get: still waiting after 3 s: shard")
        assert "group 102" in lines[0]
        assert lines[-1].startswith("diskv: get did not complete within 4 s: shard")
        assert "Traceback" not in err

    status, out, err = await diskv("cluster", "up", "--groups", "1", *d, cwd=short_tmp)
    assert status == 1
    assert "would go unserved" in err and "--groups" in err
    assert "Traceback" not in err


async def test_leave_of_a_group_that_never_ran_brings_its_shards_back_with_their_values(short_tmp: Path) -> None:
    data = short_tmp / "c"
    nowhere = ",".join(f"unix:{short_tmp}/ghost{i}.sock" for i in range(3))
    d = ("--dir", str(data))
    async with open_local_cluster(data, groups=2, replicas=3) as cluster:
        for gid in cluster.gids:
            await cluster.join(gid)
        cluster.write_description()
        written = {f"key{i}": f"value {i}" for i in range(60)}
        async with connect(cluster.masters, cluster=cluster.cluster, credentials=cluster.credentials_dir) as kv:
            with trio.fail_after(60):
                for key, value in written.items():
                    await kv.put(key, value)

            status, _, err = await diskv("admin", "join", "102", nowhere, "--force", *d, cwd=short_tmp)
            assert status == 0, err
            config: Config = await cluster.shardmaster_clerk().query(-1)
            moved = {s for s, g in enumerate(config.shards) if g == 102}
            assert moved and any(config.shard_of(k.encode()) in moved for k in written)
            status, _, err = await diskv("admin", "leave", "102", *d, cwd=short_tmp)
            assert status == 0, err
            assert 102 not in (await cluster.shardmaster_clerk().query(-1)).shards

            with trio.fail_after(60):
                for key, value in written.items():
                    assert await kv.get(key) == value.encode(), key
                await kv.append("key0", "+")
                assert await kv.get("key0") == b"value 0+"
        logs = "".join(spec.log_path.read_text() for spec in cluster.servers.values() if spec.log_path.exists())
        assert "group 102 never took it over" in logs

        status, out, err = await diskv("status", *d, cwd=short_tmp)
        assert status == 0, out + err
        assert out.startswith("HEALTHY")
