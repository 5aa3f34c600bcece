"""A Trio client running in its own thread, for callers that are not Trio tasks.

Rules kept here:
- One daemon thread per portal runs `trio.run`, holding the RPC pool and the `Client`;
  every call from outside becomes one Trio task there and one `concurrent.futures.Future`
  here. Calls from many threads (or asyncio tasks) run concurrently, as on the Trio client.
- The future carries the Trio client's own result or exception object: the same API,
  errors and limits. A call bounded by `timeout_s` that runs out raises `DiskvTimeoutError`
  (a `TimeoutError`); a cancelled future cancels its Trio task.
- `close()` cancels what is in flight, closes the pool and joins the thread.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from .client import Client, DiskvError, connect
from .net import Credentials

T = TypeVar("T")

START_TIMEOUT_S = 30.0
"""How long opening the client (reading credentials, starting the pool) may take."""


class DiskvTimeoutError(DiskvError, TimeoutError):
    """Raised by the blocking and asyncio clients when a call outlives its `timeout_s`."""


class TrioPortal:
    """Runs a `Client` in a helper thread and hands calls to it."""

    def __init__(self, masters: Any, cluster: str | None, credentials: Credentials | Path | None) -> None:
        self._args = (masters, cluster, credentials)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._client: Client | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="diskv-trio-client", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until the client is open.

        Raises:
            whatever `diskv_trio.connect` raises (discovery, credentials).
        """
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise DiskvTimeoutError(f"the client did not start within {START_TIMEOUT_S:g} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def submit(self, call: Callable[[Client], Awaitable[T]], timeout_s: float | None) -> concurrent.futures.Future[T]:
        """Run `call(client)` as a Trio task; its outcome lands in the returned future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        token = self._token
        if token is None:
            raise DiskvError("the client is closed")

        def spawn() -> None:
            if self._nursery is None:
                future.set_exception(DiskvError("the client is closed"))
            else:
                self._nursery.start_soon(self._run, call, timeout_s, future)

        try:
            token.run_sync_soon(spawn)
        except trio.RunFinishedError:
            raise DiskvError("the client is closed") from None
        return future

    def close(self) -> None:
        """Cancel the calls in flight, close the client and join its thread (idempotent)."""
        token, self._token = self._token, None
        if token is not None:
            try:
                token.run_sync_soon(self._request_stop)
            except trio.RunFinishedError:
                pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _run(
        self, call: Callable[[Client], Awaitable[T]], timeout_s: float | None, future: concurrent.futures.Future[T]
    ) -> None:
        if not future.set_running_or_notify_cancel():
            return
        assert self._client is not None
        token = self._token
        try:
            with trio.CancelScope() as scope:
                if token is not None:
                    future.add_done_callback(lambda _: _cancel_from_outside(token, scope))
                with trio.fail_after(timeout_s if timeout_s is not None else float("inf")):
                    result = await call(self._client)
                future.set_result(result)
        except trio.TooSlowError:
            future.set_exception(DiskvTimeoutError(f"no answer within {timeout_s:g} s"))
        except Exception as exc:  # handed to the caller, who sees the client's own error
            future.set_exception(exc)
        finally:
            if not future.done():  # cancelled by the caller, or the client is closing
                future.set_exception(DiskvError("the call was cancelled or the client closed"))

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to `start`, which re-raises it in the caller
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()

    async def _main(self) -> None:
        masters, cluster, credentials = self._args
        self._stop = trio.Event()
        async with connect(masters, cluster=cluster, credentials=credentials) as client:
            async with trio.open_nursery() as nursery:
                self._client, self._nursery = client, nursery
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await self._stop.wait()
                self._nursery = None
                nursery.cancel_scope.cancel()


def _cancel_from_outside(token: trio.lowlevel.TrioToken, scope: trio.CancelScope) -> None:
    """A done future (cancelled by its caller, or finished) stops its Trio task if running."""
    try:
        token.run_sync_soon(scope.cancel)
    except trio.RunFinishedError:
        pass
