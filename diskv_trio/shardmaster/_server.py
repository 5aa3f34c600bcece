"""The shardmaster server: configuration ops through the Paxos log.

Every op, Query included, is placed in the log and answered from the applied result, so a
replica that was cut off learns the latest configuration by proposing and never answers
from stale state. What is proposed is built by `build_op` from the validated fields of the
call (never the caller's map itself); bad arguments get ``ErrBadRequest`` and reach no log.
A join carries this replica's `Sharding` setting; only the cluster's first join decides with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from diskv_trio.kvproto import DEFAULT_SHARDING, SM_QUERY_APPLIED, Code, Sharding
from diskv_trio.net import (
    EVERYONE,
    PEERS_AND_OPERATORS,
    ApplicationError,
    CallContext,
    Handler,
    Role,
)
from diskv_trio.rsm import NodeSettings, ReplicaNode, call_log_or_forward

from ._ops import OP_NAMES, MoveOp, build_op, config_num
from ._state import ShardmasterState

SHARDMASTER_ROLE = "shardmaster"
SHARDMASTER_GROUP = 0
OPS = OP_NAMES
ERROR_BAD_REQUEST = Code.BAD_REQUEST
"""The caller's arguments do not make a valid op; nothing was proposed."""


def _machine_factory(sharding: Sharding) -> Callable[[dict[str, Any] | None], ShardmasterState]:
    def make(snapshot: dict[str, Any] | None) -> ShardmasterState:
        return (
            ShardmasterState(sharding) if snapshot is None else ShardmasterState.restore(snapshot)
        )

    return make


ROLES = {
    "join": PEERS_AND_OPERATORS,
    "leave": PEERS_AND_OPERATORS,
    "move": PEERS_AND_OPERATORS,
    "query": EVERYONE,
}
"""Who may call each op: configuration changes are for operators (and peers, which forward
an operator's change to the leader), queries for anyone."""


def _handlers(
    node: ReplicaNode, sharding: Sharding
) -> Mapping[str, tuple[Handler, frozenset[Role]]]:
    def make(op_name: str) -> Handler:
        async def handle(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
            try:
                op = build_op(op_name, args, sharding)
            except ValueError as exc:
                raise ApplicationError(ERROR_BAD_REQUEST, str(exc)) from None
            machine = node.require_serving().machine
            assert isinstance(machine, ShardmasterState)
            count = machine.latest.sharding.count
            if isinstance(op, MoveOp) and op.shard >= count:  # checked again when applied
                raise ApplicationError(ERROR_BAD_REQUEST, f"move: shard must be in 0..{count - 1}")
            # Refused while this replica's disk is full: the log cannot move here meanwhile.
            reply = await call_log_or_forward(
                node, f"sm.{op_name}", args, op.to_log(), read=op_name == "query"
            )
            if reply.get("err") != Code.OK:
                raise ApplicationError(
                    str(reply.get("err", Code.BAD_OP)), str(reply.get("message", ""))
                )
            return reply

        return handle

    async def query_applied(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Config `num` from this replica's applied state, without the log.

        It may be stale; it is for replica groups polling for their next config, which ask
        every shardmaster and only act on a config that exists. Clients use `sm.query`.
        """
        rsm = node.require_serving()
        try:
            num = config_num(args.get("num", -1))
        except ValueError as exc:
            raise ApplicationError(Code.BAD_REQUEST, str(exc)) from None
        machine = rsm.machine
        assert isinstance(machine, ShardmasterState)
        return {"err": Code.OK, "config": machine.query(num).to_wire()}

    handlers = {f"sm.{name}": (make(name), ROLES[name]) for name in OPS}
    handlers[SM_QUERY_APPLIED] = (query_applied, PEERS_AND_OPERATORS)
    return handlers


def shardmaster_node(settings: NodeSettings, sharding: Sharding = DEFAULT_SHARDING) -> ReplicaNode:
    """A replica node serving the shardmaster ops (`sm.join`, `sm.leave`, `sm.move`, `sm.query`).

    Args:
        settings: the node's.
        sharding: the shard count and scheme this replica's joins carry; the first join of
            the cluster fixes it (see `ShardmasterState`).
    """
    return ReplicaNode(settings, _machine_factory(sharding), lambda node: _handlers(node, sharding))
