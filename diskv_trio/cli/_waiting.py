"""Waits that explain themselves: what a CLI command is waiting for, said while it waits.

Rules kept here:
- A command that has not finished after `EXPLAIN_AFTER_S` says on stderr what it waits for,
  and says it again only when the reason changes; at its `--timeout` it fails with the last
  reason in its one error line.
- The reason comes from a quick look at the cluster (the same verdict as `diskv status`,
  for the shard of the key when there is one) and, failing that, from the client's last
  retry cause. The look needs the operator key; without it only the client's cause is given.
- The body's own exception leaves `explained_wait` unwrapped (the usual pattern for a Trio
  context manager that owns a nursery).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from diskv_trio._discovery import CLUSTER_FILE_NAME, default_data_dir, read_cluster_file
from diskv_trio.net import NetError
from diskv_trio.shardmaster import Config

from ._common import PROGRAM, CommandError
from ._health import assess

EXPLAIN_AFTER_S = 3.0
"""A command quiet for this long says what it waits for: long enough that a healthy cluster
(a few ms per call) or one electing after a restart (~1 s) never triggers it."""

EXPLAIN_EVERY_S = 2.0
"""How often the reason is looked at again while waiting (printed only when it changes)."""

LOOK_DEADLINE_S = 3.0
"""The look at the cluster itself is bounded, so an explanation never waits for ever."""


async def diagnose(masters: list[str], cluster: str, data_dir: Path | None, key: str | None) -> str | None:
    """One sentence on why calls to this cluster (for `key`) cannot succeed now, or None."""
    from ._status_cmd import collect_status, server_names

    try:
        with trio.move_on_after(LOOK_DEADLINE_S):
            status = await collect_status(masters, cluster, data_dir)
            health = assess(status, server_names(data_dir))
            shard = None
            if key is not None and "config" in status:
                shard = Config.from_wire(status["config"]).shard_of(key.encode("utf-8", "surrogateescape"))
            if shard is not None and shard in health.unserved:
                return f"shard {shard}: {health.unserved[shard]}"
            if not health.masters.majority_up:
                reason = f"no shardmaster majority answers ({_first_error(status)})"
                return reason + _stale_cluster_file(data_dir, masters)
            if health.unserved:
                return health.summary
    except (NetError, CommandError):
        return None
    return None


def _first_error(status: dict) -> str:
    errors = [row.get("error") for row in status.get("masters", ()) if row.get("error")]
    return str(errors[0]) if errors else "none answers"


def _stale_cluster_file(data_dir: Path | None, masters: list[str]) -> str:
    described = read_cluster_file(data_dir)
    if described is None or described.get("masters") != masters:
        return ""
    supervisor = described.get("supervisor")
    if isinstance(supervisor, str) and supervisor.startswith("unix:") and Path(supervisor[5:]).exists():
        return ""
    path = default_data_dir(data_dir) / CLUSTER_FILE_NAME
    return f"; {path} is stale: the `diskv cluster up` that wrote it is gone"


@asynccontextmanager
async def explained_wait(
    what: str,
    timeout_s: float,
    explain: Callable[[], Awaitable[str | None]] | None = None,
    last_cause: Callable[[], object] | None = None,
) -> AsyncIterator[None]:
    """Run the block within `timeout_s`, explaining on stderr after `EXPLAIN_AFTER_S`.

    Args:
        what: the command, for messages ("get", "admin join").
        explain: an async function returning the reason, or None if it sees none.
        last_cause: the client's last retry cause (`Client.last_wait`), used when `explain`
            finds nothing.

    Raises:
        CommandError: the block did not finish within `timeout_s`, with the last reason.
    """
    said: list[str] = []

    async def reason_now() -> str | None:
        reason = await explain() if explain is not None else None
        if reason is None and last_cause is not None and last_cause() is not None:
            reason = str(last_cause())
        return reason

    async def reporter() -> None:
        await trio.sleep(EXPLAIN_AFTER_S)
        while True:
            reason = await reason_now()
            if reason and (not said or said[-1] != reason):
                said.append(reason)
                waited = trio.current_time() - started
                print(f"{PROGRAM}: {what}: still waiting after {waited:.0f} s: {reason}", file=sys.stderr, flush=True)
            await trio.sleep(EXPLAIN_EVERY_S)

    started = trio.current_time()
    timed_out = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reporter)
            with trio.move_on_after(timeout_s) as scope:
                yield
            timed_out = scope.cancelled_caught
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            raise group.exceptions[0] from None
        raise
    if timed_out:
        reason = said[-1] if said else None
        if reason is None and last_cause is not None and last_cause() is not None:
            reason = str(last_cause())
        if reason is None:
            with trio.move_on_after(LOOK_DEADLINE_S):
                reason = await reason_now()
        suffix = f": {reason}" if reason else ""
        raise CommandError(f"{what} did not complete within {timeout_s:g} s{suffix}")
