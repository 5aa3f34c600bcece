"""Prometheus metrics scraped from a real local cluster: every server serves them, and the
counters move with the traffic.

Starts a cluster whose servers get consecutive metrics ports, writes and reads keys through
the client, scrapes every replica over HTTP and checks ops by kind and result, latency
histogram counts, journal appends, bytes and syncs, the applied index, open connections, and
that recovery and the disk-full alarm read 0. Then writes more and checks the counters grew.
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from diskv_trio.client import connect
from diskv_trio.cluster import open_local_cluster

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port_run(count: int) -> int:
    """A base port with `count` free consecutive ports after it (checked by binding)."""
    for base in range(20_000 + (hash(Path.cwd()) % 1000) * 40, 60_000, 97):
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


async def scrape(url: str) -> Samples:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    text = await trio.to_thread.run_sync(get)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: list[Samples], name: str, **labels: str) -> float:
    return sum(
        value for each in samples for (sample_name, sample_labels), value in each.items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    )


async def test_every_server_serves_metrics_and_counters_move(short_tmp: Path) -> None:
    base = free_port_run(9)
    async with open_local_cluster(short_tmp / "c", groups=2, replicas=3, metrics_port_base=base) as cluster:
        for gid in cluster.gids:
            await cluster.join(gid)
        urls = [cluster.describe()["servers"][name]["metrics"] for name in cluster.servers]
        assert urls[0] == f"http://127.0.0.1:{base}/metrics" and None not in urls
        replicas = [url for name, url in zip(cluster.servers, urls, strict=True) if name.startswith("g")]
        async with connect(cluster.masters, cluster=cluster.cluster, credentials=cluster.credentials_dir) as kv:
            with trio.fail_after(60):
                for i in range(20):
                    await kv.put(f"k{i}", "v")
                assert await kv.get("k1") == b"v"
                assert await kv.get("missing") is None
                before = [await scrape(url) for url in replicas]
                for i in range(20):
                    await kv.append(f"k{i}", "w")
                after = [await scrape(url) for url in replicas]
        masters = [await scrape(url) for url in urls[:3]]

    assert total(before, "diskv_ops_total", kind="put", result="OK") >= 20
    assert total(before, "diskv_ops_total", kind="get", result="ErrNoKey") >= 1
    assert total(before, "diskv_op_seconds_count", kind="put") >= 20
    assert total(after, "diskv_ops_total", kind="append", result="OK") >= 20
    for name in ("diskv_journal_appends_total", "diskv_journal_append_bytes_total", "diskv_journal_syncs_total",
                 "diskv_journal_sync_seconds_count", "diskv_paxos_instances_applied"):
        assert total(after, name) > total(before, name) > 0, name
    assert total(masters, "diskv_journal_appends_total") > 0
    assert total(after, "diskv_connections_open") > 0
    assert total(after, "diskv_recovering") == 0
    assert total(after, "diskv_nospace_alarm") == 0
    assert total(after, "diskv_connections_refused_total", reason="handshake") == 0
