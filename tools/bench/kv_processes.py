"""Puts and Gets from several client processes at once against one cluster (the kv bench's).

One client process is limited by its own Trio thread (encoding, HMAC, the event loop); several
show what the group serves when the clients are not the bottleneck. Each child connects with
the cluster's client key, writes one key, says ``ready``, then runs each phase the parent names
on its stdin (``puts``/``gets``, all children at once) with `tasks` concurrent tasks and
answers one JSON line: its ops per second and latencies. The children exit when their stdin
closes; the parent kills any that linger.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
PHASE_MARGIN_S = 30.0
"""A phase's answers must come within its length plus this (a loaded machine is slow)."""
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class PhaseFigures:
    """One phase over every process: total ops per second and the latencies of all of them."""

    rate: float
    latencies: list[float]

    def line(self, name: str, processes: int, tasks: int) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        return (
            f"{name}, {processes} client processes x {tasks} tasks: {self.rate:,.0f} ops/s in all "
            f"(median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99:.2f} ms)"
        )


class _Lines:
    """Lines from a child's stdout."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise EOFError("client process closed its output")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


async def measure(
    cluster: Any, cluster_name: str, seconds: float, *, processes: int = 4, tasks: int = 64
) -> dict[str, PhaseFigures]:
    """Puts then Gets from `processes` client processes of `tasks` tasks each, `seconds` each."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-m",
        "tools.bench.kv_processes",
        "--masters",
        ",".join(cluster.masters),
    ]
    argv += ["--cluster", cluster_name, "--credentials", str(cluster.credentials_dir)]
    argv += ["--tasks", str(tasks), "--seconds", str(seconds)]
    log_path = cluster.data_dir / "logs" / "bench-clients.log"
    children: list[trio.Process] = []
    figures: dict[str, PhaseFigures] = {}
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for me in range(processes):
            children.append(
                await trio.lowlevel.open_process(
                    [*argv, "--me", str(me)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_fd,
                    cwd=ROOT,
                    env=env,
                )
            )
        lines = [_Lines(child.stdout) for child in children if child.stdout is not None]
        with trio.fail_after(READY_TIMEOUT_S):
            for reader in lines:
                if await reader.next() != "ready":
                    raise RuntimeError("a client process did not start")
        for phase in ("puts", "gets"):
            for child in children:
                assert child.stdin is not None
                await child.stdin.send_all(f"{phase}\n".encode())
            answers = []
            with trio.fail_after(seconds + PHASE_MARGIN_S):
                for reader in lines:
                    answers.append(json.loads(await reader.next()))
            figures[phase] = PhaseFigures(
                sum(a["rate"] for a in answers),
                [latency for a in answers for latency in a["latencies"]],
            )
    finally:
        os.close(log_fd)
        with trio.CancelScope(shield=True):
            await _stop(children)
    return figures


async def _stop(children: list[trio.Process]) -> None:
    for child in children:
        if child.stdin is not None:
            await child.stdin.aclose()  # the child's loop ends at end of input
    with trio.move_on_after(STOP_GRACE_S):
        for child in children:
            await child.wait()
    for child in children:
        if child.returncode is None:
            child.kill()
            await child.wait()


# -- a client process ----------------------------------------------------------------------


async def _child(args: argparse.Namespace) -> None:
    from diskv_trio.client import connect

    from .kv import KEYS_PER_TASK, VALUE, _load

    stdin = _Lines(trio.lowlevel.FdStream(os.dup(0)))
    prefix = f"bench-p{args.me}"
    async with connect(args.masters, cluster=args.cluster, credentials=args.credentials) as kv:
        await kv.put(f"{prefix}-warm", "up")
        print("ready", flush=True)

        async def put(me: int, n: int) -> None:
            await kv.put(f"{prefix}-{me}-{n % KEYS_PER_TASK}", VALUE)

        async def get(me: int, n: int) -> None:
            await kv.get(f"{prefix}-{me}-{n % KEYS_PER_TASK}")

        while True:
            try:
                phase = await stdin.next()
            except EOFError:
                return
            rate, latencies = await _load(args.tasks, args.seconds, put if phase == "puts" else get)
            answer = {"rate": rate, "latencies": [round(x, 6) for x in latencies]}
            print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="one bench client process (started by the kv bench)"
    )
    parser.add_argument("--masters", type=lambda text: text.split(","), required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--credentials", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--me", type=int, default=0)
    trio.run(_child, parser.parse_args())


if __name__ == "__main__":
    main()
