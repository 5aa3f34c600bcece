"""The async client's contract that needs no cluster: discovery, validation, typed errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio

import diskv_trio
from diskv_trio import DiscoveryError, InvalidRequestError, WaitTimeoutError, connect
from diskv_trio.client import KEY_BYTES_MAX, VALUE_BYTES_MAX


def test_public_names() -> None:
    assert set(diskv_trio.__all__) == {
        "Client", "DiscoveryError", "DiskvError", "InvalidRequestError", "RejectedError",
        "WaitCause", "WaitTimeoutError", "connect",
        "AsyncioClient", "BlockingClient", "DiskvTimeoutError", "connect_asyncio", "connect_blocking",
    }
    for name in diskv_trio.__all__:
        assert getattr(diskv_trio, name) is not None


async def test_connect_without_masters_explains_where_to_find_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISKV_MASTERS", raising=False)
    with pytest.raises(DiscoveryError, match="DISKV_MASTERS"):
        async with connect():
            pass


async def test_connect_finds_the_local_cluster_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISKV_MASTERS", raising=False)
    (tmp_path / "diskv-data").mkdir()
    (tmp_path / "diskv-data" / "cluster.json").write_text(
        json.dumps({"cluster": "local", "masters": ["unix:/tmp/nowhere.sock"]})
    )
    async with connect() as kv:
        assert kv.shardmasters.masters == ["unix:/tmp/nowhere.sock"]


async def test_bad_keys_and_values_are_refused_before_sending() -> None:
    async with connect(["unix:/tmp/nowhere.sock"]) as kv:
        with pytest.raises(InvalidRequestError, match="key must be bytes or str"):
            await kv.get(5)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="value must be bytes or str"):
            await kv.put("k", 7)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="expected value must be bytes or str"):
            await kv.cas("k", 7, "new")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="together"):
            await kv.cas("k", "e" * (VALUE_BYTES_MAX // 2 + 1), "n" * (VALUE_BYTES_MAX // 2))
        with pytest.raises(InvalidRequestError, match="limit"):
            await kv.put("k" * (KEY_BYTES_MAX + 1), "v")
        with pytest.raises(InvalidRequestError, match="limit"):
            await kv.append("k", "v" * (VALUE_BYTES_MAX + 1))


async def test_too_slow_error_reaches_the_caller_unwrapped() -> None:
    """A deadline inside or around `connect()` raises `trio.TooSlowError` itself, never a group."""
    async with connect(["unix:/tmp/nowhere.sock"]) as kv:
        try:
            with trio.fail_after(0.2):
                await kv.get("k")
        except trio.TooSlowError:
            caught_inside = True
        else:
            caught_inside = False
    assert caught_inside
    try:
        with trio.fail_after(0.2):
            async with connect(["unix:/tmp/nowhere.sock"]) as kv:
                await kv.get("k")
    except trio.TooSlowError:
        caught_around = True
    assert caught_around


async def test_a_body_error_leaves_connect_as_itself() -> None:
    with pytest.raises(KeyError):
        async with connect(["unix:/tmp/nowhere.sock"]):
            raise KeyError("mine")


async def test_fail_after_says_what_the_client_waited_for() -> None:
    """With no shardmaster up, the typed error names the shardmasters it waited for."""
    async with connect(["unix:/tmp/nowhere.sock"]) as kv:
        with pytest.raises(WaitTimeoutError) as raised:
            with kv.fail_after(0.3):
                await kv.get("k")
    assert isinstance(raised.value, trio.TooSlowError)
    assert raised.value.cause is not None
    assert "unix:/tmp/nowhere.sock" in str(raised.value)
    assert kv.last_wait == raised.value.cause


async def test_move_on_after_still_moves_on() -> None:
    async with connect(["unix:/tmp/nowhere.sock"]) as kv:
        with trio.move_on_after(0.2) as scope:
            await kv.get("k")
    assert scope.cancelled_caught


async def test_each_new_retry_cause_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="diskv.client")
    async with connect(["unix:/tmp/nowhere.sock"]) as kv:
        with trio.move_on_after(0.3):
            await kv.get("k")
    retries = [r for r in caplog.records if r.name == "diskv.client" and "retrying" in r.getMessage()]
    assert len(retries) == 1  # the same cause is logged once, not once per attempt
    assert "shardmaster" in retries[0].getMessage()
