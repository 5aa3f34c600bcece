"""The shardkv server: client ops and reconfiguration through the group's Paxos log.

Rules kept here:
- A client op is validated, placed in the log and answered from its applied result;
  ownership (ErrWrongGroup) is decided where the op lands in the log.
- Every tick the replica asks the shardmasters for the config after its current one and
  proposes it; reconfigurations happen one at a time, in order, each waiting for the shards
  it brings in. Each replica drives this itself, so a minority of dead replicas never stalls
  it; duplicates of a control op are harmless no-ops when applied.
- Shards come in by pull: the new owner fetches `(config, shard)` from any replica of the
  previous owner that has moved past that config, proposes an `install`, and then tells the
  old owner it may drop its copy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from diskv_trio.net import (
    CLIENTS,
    PEERS,
    ApplicationError,
    CallContext,
    Handler,
    Role,
    RpcPool,
    RpcRemoteError,
    RpcUnavailable,
)
from diskv_trio.rsm import NodeSettings, ReplicaNode, ServerBusyError
from diskv_trio.shardmaster import ShardmasterClerk

from ._ops import (
    ReconfigOp,
    client_op,
    install_op,
    shard_ref_op,
)
from ._state import ShardKVState

log = logging.getLogger("diskv.shardkv")

TICK_S = 0.25
"""How often a replica looks for a newer configuration and drives shard transfers."""

CONFIG_QUERY_DEADLINE_S = 1.0
"""Bound on one tick's configuration query, so a dead shardmaster does not stall transfers."""

TRANSFER_CALL_DEADLINE_S = 5.0
"""One attempt to pull a shard from one replica of its previous owner."""

def _bad_request(message: str) -> ApplicationError:
    return ApplicationError("ErrBadRequest", message)


def validate_client_op(args: Mapping[str, Any]) -> dict[str, Any]:
    """The log form of a client request's op, or ErrBadRequest naming what is wrong."""
    try:
        return client_op(args).to_log()
    except ValueError as exc:
        raise _bad_request(str(exc)) from None


class ShardKVServer:
    """The shardkv-specific handlers and background work of one replica."""

    def __init__(self, node: ReplicaNode, masters: Sequence[str]) -> None:
        self._node = node
        self._masters = list(masters)

    def _state(self) -> ShardKVState:
        machine = self._node.require_serving().machine
        assert isinstance(machine, ShardKVState)
        return machine

    def handlers(self) -> Mapping[str, tuple[Handler, frozenset[Role]]]:
        """Client ops for clients; shard hand-off only between servers of the cluster."""
        return {
            "kv.op": (self._handle_op, CLIENTS),
            "kv.pull_shard": (self._handle_pull, PEERS),
            "kv.drop_shard": (self._handle_drop, PEERS),
        }

    async def _handle_op(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        op = validate_client_op(args)
        # Refused while this replica's disk is full (ErrNoSpace): its Paxos messages wait
        # behind records it cannot sync, so even a get would hang; the client asks another.
        rsm = self._node.require_writable()
        try:
            reply = await rsm.submit(op)
        except ServerBusyError as exc:
            raise ApplicationError("busy", str(exc)) from None
        if reply.get("err") == "ErrBadOp":
            raise _bad_request(str(reply.get("message", "")))
        return reply

    async def _handle_pull(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            ref = shard_ref_op("drop", args)  # the same two numbers; nothing is proposed
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        config_num, shard = ref.config_num, ref.shard
        found = self._state().handoff(config_num, shard)
        if found is None:
            raise ApplicationError("ErrNotReady", f"no handoff of shard {shard} after config {config_num} here yet")
        data, dedup = found
        return {"data": data, "dedup": dedup}

    async def _handle_drop(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            op = shard_ref_op("drop", args)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        rsm = self._node.require_serving()
        reply = await rsm.submit(op.to_log())
        return {"err": reply.get("err")}

    # ---- background reconfiguration ------------------------------------------------

    async def run(self) -> None:
        await self._node.serving.wait()
        assert self._node.pool is not None
        pool = self._node.pool
        clerk = ShardmasterClerk(self._masters, pool)
        while True:
            try:
                await self._tick(clerk, pool)
            except ApplicationError:
                pass  # stopped serving (cannot happen once serving) or busy: next tick
            await trio.sleep(TICK_S)

    async def _tick(self, clerk: ShardmasterClerk, pool: RpcPool) -> None:
        rsm = self._node.require_serving()
        while True:
            state = self._state()
            if state.waiting:
                await self._pull_waiting(state, pool)
                if self._state().waiting:
                    break
                continue
            config = None
            with trio.move_on_after(CONFIG_QUERY_DEADLINE_S):
                config = await clerk.query_applied_anywhere(state.config.num + 1)
            if config is None:
                break
            await rsm.submit(ReconfigOp(config).to_log())
        await self._send_drops(pool)

    async def _pull_waiting(self, state: ShardKVState, pool: RpcPool) -> None:
        previous = state.previous_config
        assert previous is not None
        rsm = self._node.require_serving()

        async def pull(shard: int, config_num: int, gid: int, servers: Sequence[str]) -> None:
            for address in servers:
                try:
                    reply = await pool.call(
                        address,
                        "kv.pull_shard",
                        {"config_num": config_num, "shard": shard},
                        deadline_s=TRANSFER_CALL_DEADLINE_S,
                    )
                except (RpcUnavailable, RpcRemoteError):
                    continue
                try:
                    op = install_op(config_num + 1, shard, reply)
                except ValueError as exc:
                    log.warning("shard %d from %r refused: %s", shard, address, exc)
                    continue
                await rsm.submit(op.to_log())
                return

        async with trio.open_nursery() as nursery:
            for item in state.pending_pulls():
                servers = previous.groups.get(item.gid, ())
                nursery.start_soon(pull, item.shard, item.config_num, item.gid, servers)

    async def _send_drops(self, pool: RpcPool) -> None:
        rsm = self._node.require_serving()

        async def drop(config_num: int, shard: int, servers: Sequence[str]) -> None:
            for address in servers:
                try:
                    reply = await pool.call(
                        address,
                        "kv.drop_shard",
                        {"config_num": config_num, "shard": shard},
                        deadline_s=TRANSFER_CALL_DEADLINE_S,
                    )
                except (RpcUnavailable, RpcRemoteError):
                    continue
                if reply.get("err") == "OK":
                    ack = shard_ref_op("dropped_ack", {"config_num": config_num, "shard": shard})
                    await rsm.submit(ack.to_log())
                    return

        async with trio.open_nursery() as nursery:
            for item in self._state().pending_drops():
                nursery.start_soon(drop, item.config_num, item.shard, item.servers)


def _machine_factory(gid: int) -> Callable[[dict[str, Any] | None], ShardKVState]:
    def make(snapshot: dict[str, Any] | None) -> ShardKVState:
        return ShardKVState(gid) if snapshot is None else ShardKVState.restore(snapshot)

    return make


class ShardKVNode(ReplicaNode):
    """A replica node that also runs the shardkv reconfiguration work."""

    def __init__(self, settings: NodeSettings, masters: Sequence[str]) -> None:
        super().__init__(settings, _machine_factory(settings.group), self._shardkv_handlers)
        self.server = ShardKVServer(self, masters)

    def _shardkv_handlers(self, node: ReplicaNode) -> Mapping[str, tuple[Handler, frozenset[Role]]]:
        return self.server.handlers()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(super().run)
            nursery.start_soon(self.server.run)
            task_status.started()


def shardkv_node(settings: NodeSettings, masters: Sequence[str]) -> ShardKVNode:
    """A replica node of group `settings.group` serving `kv.*` requests."""
    return ShardKVNode(settings, masters)

