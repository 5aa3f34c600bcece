"""The shardmaster server: configuration ops through the Paxos log.

Every op, Query included, is placed in the log and answered from the applied result, so a
replica that was cut off learns the latest configuration by proposing and never answers
from stale state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diskv_trio.net import ApplicationError, CallContext, Handler
from diskv_trio.rsm import NodeSettings, ReplicaNode

from ._state import ShardmasterState

SHARDMASTER_ROLE = "shardmaster"
SHARDMASTER_GROUP = 0
OPS = ("join", "leave", "move", "query")


def _machine_factory(snapshot: dict[str, Any] | None) -> ShardmasterState:
    return ShardmasterState() if snapshot is None else ShardmasterState.restore(snapshot)


def _handlers(node: ReplicaNode) -> Mapping[str, Handler]:
    def make(op_name: str) -> Handler:
        async def handle(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
            rsm = node.require_serving()
            reply = await rsm.submit({**args, "op": op_name})
            if not reply.get("ok", False):
                raise ApplicationError(
                    str(reply.get("error", "ErrBadOp")), str(reply.get("message", ""))
                )
            return reply

        return handle

    async def query_applied(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Config `num` from this replica's applied state, without the log.

        It may be stale; it is for replica groups polling for their next config, which ask
        every shardmaster and only act on a config that exists. Clients use `sm.query`.
        """
        rsm = node.require_serving()
        num = args.get("num", -1)
        if not isinstance(num, int) or isinstance(num, bool):
            raise ApplicationError("ErrBadOp", "num must be an integer")
        machine = rsm.machine
        assert isinstance(machine, ShardmasterState)
        return {"ok": True, "config": machine.query(num).to_wire()}

    handlers = {f"sm.{name}": make(name) for name in OPS}
    handlers["sm.query_applied"] = query_applied
    return handlers


def shardmaster_node(settings: NodeSettings) -> ReplicaNode:
    """A replica node serving the shardmaster ops (`sm.join`, `sm.leave`, `sm.move`, `sm.query`)."""
    return ReplicaNode(settings, _machine_factory, _handlers)
