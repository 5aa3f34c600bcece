"""A local cluster with TLS on every listener, end to end.

In process: `open_local_cluster(tls=True)`; `connect()` finds the cluster, its client key
and its TLS directory as a user's program would, puts and reads back; `connect(ssl_context=)`
does the same with the application's own context; a plain-text caller is refused with an
error naming TLS, the server logs one line and keeps serving.

Through the command line: `diskv cluster up --tls` runs as a process; `put`, `get`,
`status` and `cluster kill` / `restart` work unchanged beside it; a client that finds no
TLS settings gets one line naming TLS; Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster
from diskv_trio.net import Credentials, HandshakeError, Identity, Role, open_rpc_pool

pytestmark = pytest.mark.slow

READY_S = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISKV_")}
    return {**env, **extra}


async def diskv(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m diskv_trio ARGS`; return (status, stdout, stderr)."""
    result = await trio.run_process(
        [sys.executable, "-m", "diskv_trio", *args], cwd=cwd, env=env or clean_env(),
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_tls_cluster_serves_found_clients_and_refuses_plain_text(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = short_tmp / "c"
    async with open_local_cluster(data, groups=1, replicas=3, tls=True) as cluster:
        for gid in cluster.gids:
            await cluster.join(gid)
        cluster.write_description()
        tls_dir = data / "tls"
        assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
        assert json.loads((data / "cluster.json").read_text())["tls"] == str(tls_dir.resolve())

        monkeypatch.setenv("DISKV_DIR", str(data))
        async with connect() as kv:
            with kv.fail_after(20):
                await kv.put("k", "over tls")
                assert await kv.get("k") == b"over tls"

        assert cluster.credentials is not None
        keys = Credentials(cluster.credentials.keys)  # the same keys, no TLS
        context = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
        async with connect(
            cluster.masters, cluster=cluster.cluster, credentials=keys, ssl_context=context
        ) as kv:
            with kv.fail_after(20):
                assert await kv.get("k") == b"over tls"

        master = cluster.spec("master-0")
        async with open_rpc_pool(
            Identity(cluster.cluster, Role.OPERATOR, "plain"), credentials=keys
        ) as pool:
            with pytest.raises(HandshakeError, match="speaks TLS only") as refused:
                await pool.call(master.address, "rsm.status", {}, deadline_s=10)
        assert refused.value.code == "tls"
        assert "speaks TLS only" in master.log_path.read_text()
        assert cluster.is_running("master-0")
        assert await cluster.status("master-0")  # still answers, over TLS


async def test_cluster_up_tls_with_the_bundled_tools(short_tmp: Path) -> None:
    data = short_tmp / "c"
    d = ("--dir", str(data))
    argv = [sys.executable, "-m", "diskv_trio", "cluster", "up", "--tls", "--groups", "1", *d]
    # Its log records go to DIR/logs; stderr holds nothing a test needs.
    up = await trio.lowlevel.open_process(
        argv, cwd=short_tmp, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        with trio.fail_after(READY_S):
            banner = await read_banner(up)
        assert f"tls: {data.resolve() / 'tls'}" in banner

        status, out, err = await diskv("put", "greeting", "hello", *d, cwd=short_tmp)
        assert status == 0, out + err
        status, out, err = await diskv("get", "greeting", *d, cwd=short_tmp)
        assert (status, out.strip()) == (0, "hello"), err
        status, out, err = await diskv("status", *d, cwd=short_tmp)
        assert status == 0, out + err
        assert out.startswith("HEALTHY")

        status, out, err = await diskv("cluster", "kill", "g100-2", *d, cwd=short_tmp)
        assert (status, out.strip()) == (0, "g100-2 killed"), err
        status, out, err = await diskv("cluster", "restart", "g100-2", *d, cwd=short_tmp)
        assert status == 0, err
        assert out.startswith("g100-2 restarted")

        # Keys alone, no TLS settings: the first master refuses in one line naming TLS.
        masters = json.loads((data / "cluster.json").read_text())["masters"]
        env = clean_env(DISKV_CREDENTIALS=str(data / "credentials"))
        status, out, err = await diskv(
            "get", "greeting", "--masters", ",".join(masters), cwd=short_tmp, env=env
        )
        assert status == 1
        assert "speaks TLS only" in err and "DISKV_TLS_DIR" in err
        assert "Traceback" not in err
        print(err)  # for the record: what a user sees
    finally:
        up.send_signal(signal.SIGINT)
        with trio.move_on_after(30):
            await up.wait()
        up.kill()
        await up.wait()
    assert up.returncode == 0  # Ctrl-C is how `cluster up` is meant to stop


async def read_banner(up: trio.Process) -> str:
    """`cluster up`'s stdout up to the line that says how to stop it (the cluster is ready)."""
    assert up.stdout is not None
    seen = b""
    while b"Ctrl-C stops everything" not in seen:
        data = await up.stdout.receive_some()
        if not data:
            raise AssertionError(f"cluster up ended before its banner: {seen.decode()}")
        seen += data
    return seen.decode()
