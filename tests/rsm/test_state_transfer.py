"""State transfer: a state larger than one chunk arrives whole and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from diskv_trio.net import PEERS, CallContext, Identity, RpcServer, open_rpc_pool
from diskv_trio.rsm import _state_transfer
from diskv_trio.rsm._state_transfer import StateTransferSource, fetch_state


async def serve(nursery: trio.Nursery, address: str, source: StateTransferSource) -> None:
    async def handle(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return source.handle(args)

    server = RpcServer(address, Identity("t", "peer", "src"), {"rsm.fetch_state": handle}, roles=PEERS)
    await nursery.start(server.serve)


async def test_state_bigger_than_a_chunk_arrives_whole(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_state_transfer, "CHUNK_BYTES_MAX", 1000)
    state = {"applied": 41, "machine": {"data": {f"k{i}": "v" * i for i in range(200)}}}
    encodings = 0

    def snapshot() -> dict[str, Any]:
        nonlocal encodings
        encodings += 1
        return state

    address = f"unix:{short_tmp}/s.sock"
    async with trio.open_nursery() as nursery:
        await serve(nursery, address, StateTransferSource(snapshot))
        async with open_rpc_pool(Identity("t", "peer", "dst")) as pool:
            assert await fetch_state(pool, address) == state
        nursery.cancel_scope.cancel()
    assert encodings == 1, "the state is encoded once per transfer, not once per chunk"


async def test_corrupted_transfer_is_refused(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state_transfer, "CHUNK_BYTES_MAX", 100)
    source = StateTransferSource(lambda: {"applied": 1, "machine": {"x": "y" * 500}})
    original = source.handle

    def flip(args: dict[str, Any]) -> dict[str, Any]:
        reply = original(args)
        if reply["offset"] == 100:
            reply["chunk"] = bytes(b ^ 1 for b in reply["chunk"])
        return reply

    source.handle = flip  # type: ignore[method-assign]
    address = f"unix:{short_tmp}/s.sock"
    async with trio.open_nursery() as nursery:
        await serve(nursery, address, source)
        async with open_rpc_pool(Identity("t", "peer", "dst")) as pool:
            with pytest.raises(_state_transfer.StateTransferError, match="checksum"):
                await fetch_state(pool, address)
        nursery.cancel_scope.cancel()


async def test_a_peer_answering_in_another_format_is_an_error_not_a_crash(short_tmp: Path) -> None:
    """A peer running another version answers without the chunk fields: a clear error."""

    async def old_style(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"applied": 3, "machine": {}}

    address = f"unix:{short_tmp}/s.sock"
    server = RpcServer(address, Identity("t", "peer", "src"), {"rsm.fetch_state": old_style}, roles=PEERS)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with open_rpc_pool(Identity("t", "peer", "dst")) as pool:
            with pytest.raises(_state_transfer.StateTransferError, match="unknown format"):
                await fetch_state(pool, address)
        nursery.cancel_scope.cancel()
