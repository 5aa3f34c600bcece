"""Server processes and the command line against a real local cluster.

Checks what a user of the processes relies on: shardmaster processes restarted (all at once,
SIGKILL) keep their whole configuration history; SIGTERM stops a server cleanly (exit 0);
`diskv admin`, `get`/`put`/`append` and `status` work as documented, finding the cluster
through `DISKV_MASTERS` or the `cluster.json` of the working directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster

pytestmark = pytest.mark.slow


async def diskv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m diskv_trio ARGS`; return (status, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if k != "DISKV_MASTERS"} | (env or {})
    result = await trio.run_process(
        [sys.executable, "-m", "diskv_trio", *args],
        cwd=cwd,
        env=full_env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_shardmasters_restarted_together_keep_their_history(short_tmp: Path) -> None:
    """Kill every shardmaster with SIGKILL, restart them all: every config is still there."""
    async with open_local_cluster(short_tmp / "c", groups=0, cluster="test") as cluster:
        clerk = cluster.shardmaster_clerk()
        for gid in (1, 2, 3):
            await clerk.join(gid, [f"unix:/nowhere/{gid}-{i}" for i in range(3)])
        await clerk.move(0, 3)
        await clerk.leave(2)
        latest = await clerk.query(-1)
        history = [await clerk.query(n) for n in range(latest.num + 1)]
        masters = [n for n, s in cluster.servers.items() if s.role == "shardmaster"]
        for name in masters:
            await cluster.kill(name)
        for name in masters:
            await cluster.restart(name)
        with trio.fail_after(30):
            assert await clerk.query(-1) == latest
            for config in history:
                assert await clerk.query(config.num) == config
            await clerk.join(4, ["unix:/nowhere/4"])
            assert (await clerk.query(-1)).num == latest.num + 1


async def test_sigterm_stops_a_server_cleanly(short_tmp: Path) -> None:
    async with open_local_cluster(short_tmp / "c", groups=1, replicas=3, cluster="test") as cluster:
        name = cluster.group_servers(cluster.gids[0])[0]
        process = cluster.spec(name).process
        assert process is not None
        await cluster.terminate(name)
        assert process.returncode == 0
        assert "stopped" in cluster.spec(name).log_path.read_text()


async def test_command_line_against_a_local_cluster(short_tmp: Path) -> None:
    data_dir = short_tmp / "diskv-data"
    async with open_local_cluster(data_dir, groups=1, replicas=3) as cluster:
        cluster.write_description()
        gid = cluster.gids[0]
        masters = ",".join(cluster.masters)
        status, out, err = await diskv(
            "admin", "join", str(gid), ",".join(cluster.group_addresses(gid)),
            "--masters", masters, cwd=short_tmp,
        )
        assert status == 0, err
        # Found through ./diskv-data/cluster.json of the working directory.
        assert (await diskv("put", "greeting", "hello", cwd=short_tmp))[0] == 0
        assert (await diskv("append", "greeting", ", world", cwd=short_tmp))[0] == 0
        status, out, err = await diskv("get", "greeting", cwd=short_tmp)
        assert (status, out) == (0, "hello, world"), err  # the bytes, no newline added
        # Found through DISKV_MASTERS anywhere else, with the key from DISKV_CREDENTIALS.
        elsewhere = short_tmp / "diskv-data"
        status, out, err = await diskv("get", "greeting", "--timeout", "5", cwd=elsewhere,
                                       env={"DISKV_MASTERS": masters})
        assert status == 1 and out == ""
        last = err.strip().splitlines()[-1]
        assert last.startswith("diskv: auth: client") and "DISKV_CREDENTIALS" in last, err
        status, out, _ = await diskv("get", "greeting", cwd=elsewhere, env={
            "DISKV_MASTERS": masters, "DISKV_CREDENTIALS": str(cluster.credentials_dir)})
        assert out == "hello, world"
        status, out, err = await diskv("admin", "query", "--json", cwd=short_tmp)
        assert status == 0, err
        config = json.loads(out)
        assert set(config["shards"]) == {gid}
        status, out, err = await diskv("status", "--json", cwd=short_tmp)
        assert status == 0, err
        described = json.loads(out)
        assert described["verdict"] == "healthy"
        rows = next(g for g in described["groups"] if g["gid"] == gid)["servers"]
        assert [r["name"] for r in rows] == cluster.group_servers(gid)
        assert len(rows) == 3 and all(r["answers"] and r["state"] == "intact" for r in rows)
        assert all(isinstance(r["journal_bytes"], int) for r in rows)
        await cluster.kill(cluster.group_servers(gid)[2])
        status, out, err = await diskv("status", cwd=short_tmp)
        assert status == 1  # degraded: every shard is still served
        assert out.startswith("DEGRADED") and "DOWN" in out
        status, out, err = await diskv("get", "greeting", "--timeout", "0.5",
                                       cwd=short_tmp, env={"DISKV_MASTERS": "unix:/nonexistent.sock"})
        assert status == 1
        assert err.startswith("diskv: get did not complete within 0.5 s")


async def test_malformed_client_requests_get_clear_errors_and_the_server_lives(short_tmp: Path) -> None:
    """Wrong types, unknown ops and oversized values are refused; the server keeps serving."""
    from diskv_trio.kvproto import VALUE_BYTES_MAX
    from diskv_trio.net import RpcRemoteError

    async with open_local_cluster(short_tmp / "c", groups=1, replicas=3, cluster="test") as cluster:
        gid = cluster.gids[0]
        await cluster.join(gid)
        address = cluster.group_addresses(gid)[0]
        bad_requests = [
            {"op": "put", "key": 5, "value": "v", "client": "c", "seq": 1},
            {"op": "explode", "key": "k"},
            {"op": "put", "key": "k", "value": "v", "client": "c", "seq": -1},
            {"op": "append", "key": "k", "value": ["not", "a", "string"], "client": "c", "seq": 1},
            {"op": "put", "key": "k", "value": "v" * (VALUE_BYTES_MAX + 1), "client": "c", "seq": 1},
        ]
        for args in bad_requests:
            with pytest.raises(RpcRemoteError) as raised:
                await cluster.pool.call(address, "kv.op", args, deadline_s=10)
            assert raised.value.code == "ErrBadRequest"
            assert raised.value.message
        async with connect(cluster.masters, cluster=cluster.cluster, credentials=cluster.credentials) as kv:
            with trio.fail_after(30):
                await kv.put("k", "still serving")
                assert await kv.get_text("k") == "still serving"
        assert cluster.is_running(cluster.group_servers(gid)[0])



async def _wait_for(condition, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll an external condition (another process's files or sockets) until it holds."""
    with trio.fail_after(timeout_s):
        while not condition():  # noqa: ASYNC110 - another process, no event to wait on
            await trio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGKILL"])
async def test_cluster_up_supervises_and_leaves_no_orphans(short_tmp: Path, stop_signal: str) -> None:
    """`diskv cluster up`: joins its groups, kills and restarts servers on request, and no
    server outlives it, whether it is stopped with Ctrl-C or killed with SIGKILL."""
    import signal

    data_dir = short_tmp / "diskv-data"
    description = data_dir / "cluster.json"
    up = await trio.lowlevel.open_process(
        [sys.executable, "-m", "diskv_trio", "cluster", "up", "--groups", "1"],
        cwd=short_tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids: list[int] = []
    try:
        await _wait_for(lambda: description.exists() and json.loads(description.read_text()).get("supervisor"))
        status, out, err = await diskv("get", "nothing-here", cwd=short_tmp)
        assert (status, out) == (3, ""), err  # a missing key: its own exit status
        assert "no such key" in err
        status, out, err = await diskv("cluster", "kill", "g100-1", cwd=short_tmp)
        assert status == 0, err
        status, out, _ = await diskv("status", cwd=short_tmp)
        assert status == 1 and "DOWN" in out
        status, out, err = await diskv("cluster", "restart", "g100-1", cwd=short_tmp)
        assert status == 0 and "restarted" in out, err
        status, out, err = await diskv("cluster", "restart", "g100-1", cwd=short_tmp)
        assert status == 1 and "already running" in err
        status, out, err = await diskv("status", cwd=short_tmp)
        assert status == 0, out + err
        pids = [s["pid"] for s in json.loads(description.read_text())["servers"].values()]
        assert len(pids) == 6 and all(pids)
        up.send_signal(getattr(signal, stop_signal))
        with trio.fail_after(30):
            await up.wait()
        if stop_signal == "SIGINT":
            assert up.returncode == 0
        await _wait_for(lambda: not any(_alive(pid) for pid in pids), timeout_s=15)
    finally:
        if up.returncode is None:
            up.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, 9)
