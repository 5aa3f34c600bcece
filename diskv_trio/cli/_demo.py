"""`diskv demo`: a local cluster, a workload through a crash, and proof the data survived."""

from __future__ import annotations

import random
import time
from pathlib import Path

import trio
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from diskv_trio.client import connect
from diskv_trio.cluster import LocalCluster, open_local_cluster

WRITERS = 16
"""Concurrent client tasks in the demo workload."""


async def _write_keys(kv, keys: list[str], progress: Progress, label: str) -> dict[str, str]:
    expected: dict[str, str] = {}
    task = progress.add_task(label, total=len(keys))
    send, receive = trio.open_memory_channel[str](len(keys))
    for key in keys:
        send.send_nowait(key)
    send.close()

    async def writer() -> None:
        async for key in receive:
            value = f"{key}={random.randrange(10**6)}"
            await kv.put(key, value)
            await kv.append(key, "+")
            expected[key] = value + "+"
            progress.advance(task)

    async with trio.open_nursery() as nursery:
        for _ in range(WRITERS):
            nursery.start_soon(writer)
    return expected


async def _check_keys(kv, expected: dict[str, str], progress: Progress, label: str) -> list[str]:
    wrong: list[str] = []
    task = progress.add_task(label, total=len(expected))
    for key, value in expected.items():
        if await kv.get_text(key) != value:
            wrong.append(key)
        progress.advance(task)
    return wrong


async def _status_table(cluster: LocalCluster, console: Console) -> None:
    table = Table(title="servers")
    for column in ("server", "state", "applied", "max", "min", "journal bytes"):
        table.add_column(column)
    for name in cluster.servers:
        try:
            status = await cluster.status(name)
        except Exception:  # noqa: BLE001 - a down server is shown as down
            table.add_row(name, "DOWN", "", "", "", "")
            continue
        table.add_row(
            name,
            str(status.get("state")),
            str(status.get("applied")),
            str(status.get("max")),
            str(status.get("min")),
            str(status.get("journal_bytes")),
        )
    console.print(table)


async def demo(data_dir: Path, key_count: int) -> bool:
    """Run the demo; True if every key read back intact after the crash and restart."""
    console = Console()
    started = time.monotonic()
    console.print(f"[bold]starting a local cluster in {data_dir.resolve()}[/bold]")
    async with open_local_cluster(data_dir, groups=2, replicas=3) as cluster:
        for gid in cluster.gids:
            await cluster.join(gid)
        cluster.write_description()
        console.print(f"3 shardmasters and {len(cluster.gids)} groups of 3 replicas are up "
                      f"({time.monotonic() - started:.1f} s)")
        # A key's shard is its first character: vary it so every group gets some.
        keys = [f"{chr(ord('a') + i % 26)}-key-{i:05d}" for i in range(key_count)]
        async with connect(cluster.masters, cluster=cluster.cluster, credentials=cluster.credentials) as kv:
            with Progress(console=console) as progress:
                expected = await _write_keys(kv, keys, progress, "put + append")
                wrong = await _check_keys(kv, expected, progress, "read back")
            console.print(f"wrote and read {len(expected)} keys; mismatches: {len(wrong)}")

            victim = cluster.group_servers(cluster.gids[0])[1]
            console.print(f"[bold red]killing {victim} with SIGKILL[/bold red]")
            await cluster.kill(victim)
            more = [f"{chr(ord('a') + i % 26)}-more-{i:05d}" for i in range(max(1, key_count // 4))]
            with Progress(console=console) as progress:
                expected |= await _write_keys(kv, more, progress, f"writes with {victim} down")
            console.print(f"[bold green]restarting {victim} on its directory[/bold green]")
            await cluster.restart(victim)
            with Progress(console=console) as progress:
                wrong = await _check_keys(kv, expected, progress, "read everything back")
            await _status_table(cluster, console)
    ok = not wrong
    if ok:
        console.print(f"[bold green]all {len(expected)} keys intact[/bold green] "
                      f"({time.monotonic() - started:.1f} s); the cluster is stopped")
    else:
        console.print(f"[bold red]{len(wrong)} keys wrong: {wrong[:10]}[/bold red]")
    return ok
