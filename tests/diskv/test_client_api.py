"""The async client's contract that needs no cluster: discovery, validation, typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import diskv_trio
from diskv_trio import DiscoveryError, InvalidRequestError, connect
from diskv_trio.client import KEY_BYTES_MAX, VALUE_BYTES_MAX


def test_public_names() -> None:
    assert set(diskv_trio.__all__) == {
        "Client", "DiscoveryError", "DiskvError", "InvalidRequestError", "RejectedError", "connect",
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
        with pytest.raises(InvalidRequestError, match="key must be str"):
            await kv.get(5)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="value must be str"):
            await kv.put("k", b"bytes")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="limit"):
            await kv.put("k" * (KEY_BYTES_MAX + 1), "v")
        with pytest.raises(InvalidRequestError, match="limit"):
            await kv.append("k", "v" * (VALUE_BYTES_MAX + 1))
