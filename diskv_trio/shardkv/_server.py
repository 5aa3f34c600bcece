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
  old owner it may drop its copy. The holder grants each hand-off to one puller in its log
  before handing it out; a puller whose previous owner has not answered for
  `RECLAIM_AFTER_TICKS` asks the older holders instead (`_handback` says why that is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from diskv_trio import _metrics
from diskv_trio.kvproto import KV_DROP_SHARD, KV_OP, KV_PULL_SHARD, Code, decode_op
from diskv_trio.net import (
    CLIENTS,
    PEERS,
    ApplicationError,
    CallContext,
    Handler,
    NetError,
    Role,
    RpcPool,
)
from diskv_trio.rsm import (
    NodeSettings,
    NotLeaderError,
    ReplicaNode,
    ServerBusyError,
    call_log,
    call_log_or_forward,
)
from diskv_trio.shardmaster import Config, ShardmasterClerk

from ._handback import (
    RECLAIM_CONFIGS_MAX,
    Grant,
    Source,
    grant_request,
    granted_to,
    reclaim_sources,
)
from ._ops import ForfeitOp, GrantOp, ReconfigOp, install_op, shard_ref_op
from ._state import ShardKVState
from ._tables import dedup_to_wire

log = logging.getLogger("diskv.shardkv")

CLIENT_OP_KINDS = frozenset({"get", "put", "append", "delete", "cas"})
"""Op kinds counted by name in the metrics; anything else counts as "invalid"."""

TICK_S = 0.25
"""How often a replica looks for a newer configuration and drives shard transfers."""

CONFIG_QUERY_DEADLINE_S = 1.0
"""Bound on one tick's configuration query, so a dead shardmaster does not stall transfers."""

TRANSFER_CALL_DEADLINE_S = 5.0
"""One attempt to pull a shard from one replica of its previous owner."""

RECLAIM_AFTER_TICKS = 8
"""Ticks (2 s) a shard waits on a silent previous owner before older holders are asked; a
reclaim is safe at any time, so this only spares a slow owner from being skipped."""


def _bad_request(message: str) -> ApplicationError:
    return ApplicationError(Code.BAD_REQUEST, message)


def validate_client_op(args: Mapping[str, Any]) -> dict[str, Any]:
    """The log form of a client request's op, or ErrBadRequest naming what is wrong."""
    try:
        return decode_op(args).to_wire()
    except ValueError as exc:
        raise _bad_request(str(exc)) from None


class ShardKVServer:
    """The shardkv-specific handlers and background work of one replica."""

    def __init__(self, node: ReplicaNode, masters: Sequence[str]) -> None:
        self._node = node
        self._masters = list(masters)
        self._configs: dict[int, Config] = {}  # configs never change: a cache for reclaims
        self._stalled_ticks: dict[tuple[int, int], int] = {}  # (config, shard) -> ticks

    def _state(self) -> ShardKVState:
        machine = self._node.require_serving().machine
        assert isinstance(machine, ShardKVState)
        return machine

    def handlers(self) -> Mapping[str, tuple[Handler, frozenset[Role]]]:
        """Client ops for clients; shard hand-off only between servers of the cluster."""
        return {
            KV_OP: (self._handle_op, CLIENTS | PEERS),  # peers: forwarded to the leader
            KV_PULL_SHARD: (self._handle_pull, PEERS),
            KV_DROP_SHARD: (self._handle_drop, PEERS),
        }

    async def _handle_op(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        kind = str(args.get("op")) if args.get("op") in CLIENT_OP_KINDS else "invalid"
        result = Code.INTERNAL.value
        started = trio.current_time()
        try:
            reply = await self._apply_op(args)
            result = str(reply.get("err"))
            return reply
        except ApplicationError as exc:
            result = str(exc.code)
            raise
        finally:
            _metrics.OPS.labels(kind, result).inc()
            _metrics.OP_SECONDS.labels(kind).observe(trio.current_time() - started)

    async def _apply_op(self, args: dict[str, Any]) -> dict[str, Any]:
        op = validate_client_op(args)
        # Refused while this replica's disk is full (ErrNoSpace): its Paxos messages wait
        # behind records it cannot sync, so even a get would hang; the client asks another.
        reply = await call_log_or_forward(self._node, KV_OP, args, op, read=op.get("op") == "get")
        if reply.get("err") == Code.BAD_OP:
            raise _bad_request(str(reply.get("message", "")))
        return reply

    async def _handle_pull(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            config_num, shard, grant = grant_request(args)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        state = self._state()
        if state.handoff(config_num, shard) is None:
            given = state.grant_of(config_num, shard)
            if given is not None and given != grant:
                return {"granted_to": list(given)}  # handed on and dropped: the puller forfeits
            raise ApplicationError(Code.NOT_READY, f"no handoff of shard {shard} after config {config_num} here")
        reply = await call_log(self._node.require_serving(), GrantOp(config_num, shard, grant).to_log())
        if "granted_to" in reply:
            return {"granted_to": reply["granted_to"]}
        found = self._state().handoff(config_num, shard)
        if found is None:
            raise ApplicationError(Code.NOT_READY, f"no handoff of shard {shard} after config {config_num} here yet")
        data, dedup = found
        return {"data": data, "dedup": dedup_to_wire(dedup)}

    async def _handle_drop(self, args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            op = shard_ref_op("drop", args)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        reply = await call_log(self._node.require_serving(), op.to_log())
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
            except* (ApplicationError, ServerBusyError, NotLeaderError):
                pass  # busy, or no longer the leader: next tick
            await trio.sleep(TICK_S)

    async def _tick(self, clerk: ShardmasterClerk, pool: RpcPool) -> None:
        rsm = self._node.require_serving()
        if rsm.peer.leader_mode and not rsm.peer.leading.value:
            return  # the leader reconfigures the group; its followers apply what it logs
        while True:
            state = self._state()
            if state.waiting:
                await self._pull_waiting(state, pool, clerk)
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

    async def _pull_waiting(self, state: ShardKVState, pool: RpcPool, clerk: ShardmasterClerk) -> None:
        previous = state.previous_config
        assert previous is not None
        rsm = self._node.require_serving()
        grant = Grant(state.gid, state.config.num)

        async def pull(shard: int, config_num: int, gid: int, servers: Sequence[str]) -> None:
            reply = await self._fetch(pool, Source(config_num, gid, tuple(servers)), shard, grant)
            source = None
            stalled = self._stalled_ticks.get((grant.config_num, shard), 0) + 1
            self._stalled_ticks[(grant.config_num, shard)] = stalled
            if reply is None and stalled >= RECLAIM_AFTER_TICKS:
                reply, source = await self._reclaim(pool, clerk, previous, shard, grant)
            if reply is None:
                return
            refusal = granted_to(reply)
            if refusal is not None:
                if refusal.config_num > grant.config_num:
                    log.warning("shard %d went on to group %d at config %d without us: forfeited", shard, *refusal)
                    await rsm.submit(ForfeitOp(grant.config_num, shard, refusal).to_log())
                return
            try:
                op = install_op(grant.config_num, shard, state.config.sharding, reply, source)
            except ValueError as exc:
                log.warning("shard %d from group %d refused: %s", shard, gid, exc)
                return
            if source is not None:
                log.warning("shard %d reclaimed from group %d (config %d): group %d never took it over",
                            shard, source.gid, source.config_num, gid)
            await rsm.submit(op.to_log())

        self._stalled_ticks = {k: v for k, v in self._stalled_ticks.items() if k[0] == grant.config_num}
        async with trio.open_nursery() as nursery:
            for item in state.pending_pulls():
                servers = previous.groups.get(item.gid, ())
                nursery.start_soon(pull, item.shard, item.config_num, item.gid, servers)

    async def _fetch(self, pool: RpcPool, source: Source, shard: int, grant: Grant) -> dict[str, Any] | None:
        """Hand-off ``(source.config_num, shard)`` granted to us, or a refusal naming its
        grant; None if no replica of `source` has it for us now."""
        args = {"config_num": source.config_num, "shard": shard, "gid": grant.gid, "to_config": grant.config_num}
        for address in source.servers:
            try:
                reply = await pool.call(address, KV_PULL_SHARD, args, deadline_s=TRANSFER_CALL_DEADLINE_S)
            except NetError:
                continue
            if isinstance(reply, dict):
                return reply
        return None

    async def _reclaim(
        self, pool: RpcPool, clerk: ShardmasterClerk, previous: Config, shard: int, grant: Grant
    ) -> tuple[dict[str, Any] | None, Source | None]:
        """Ask the older holders of `shard`, newest first; the first answer ends the walk."""
        chain = [previous]
        while len(chain) <= RECLAIM_CONFIGS_MAX and chain[-1].num > 0 and chain[-1].shards[shard] != 0:
            num = chain[-1].num - 1
            config = self._configs.get(num)
            if config is None:
                with trio.move_on_after(CONFIG_QUERY_DEADLINE_S):
                    config = await clerk.query_applied_anywhere(num)
                if config is None:
                    return None, None
                self._configs[num] = config
            chain.append(config)
        for source in reclaim_sources(shard, chain):
            reply = await self._fetch(pool, source, shard, grant)
            if reply is not None:
                return reply, source
        return None, None

    async def _send_drops(self, pool: RpcPool) -> None:
        rsm = self._node.require_serving()

        async def drop(config_num: int, shard: int, servers: Sequence[str]) -> None:
            for address in servers:
                try:
                    reply = await pool.call(
                        address,
                        KV_DROP_SHARD,
                        {"config_num": config_num, "shard": shard},
                        deadline_s=TRANSFER_CALL_DEADLINE_S,
                    )
                except NetError:
                    continue
                if reply.get("err") == Code.OK:
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

