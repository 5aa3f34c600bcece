"""The built-in operator methods every server has: fault injection and statistics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._errors import ApplicationError
from ._faults import Faults

if TYPE_CHECKING:
    from ._handler import CallContext

logger = logging.getLogger("diskv.net")

AdminHandler = Callable[[dict[str, Any], "CallContext"], Awaitable[dict[str, Any]]]


class AdminMethods:
    def __init__(
        self, node_id: str, faults: Faults, connection_counts: Callable[[], dict[str, int]]
    ) -> None:
        self._node_id = node_id
        self._faults = faults
        self._connection_counts = connection_counts

    def handlers(self) -> dict[str, AdminHandler]:
        return {"admin.faults": self.faults, "admin.stats": self.stats}

    async def faults(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        """Read, and if `args` holds any of unreliable/cut/deaf, change the fault settings."""
        try:
            self._faults.update(args)
        except ValueError as exc:
            raise ApplicationError("bad-args", str(exc)) from None
        settings = self._faults.settings()
        if args:
            logger.info(
                "faults of %s set by %s/%r: %s",
                self._node_id,
                context.peer_role,
                context.peer_id,
                settings,
            )
        return settings

    async def stats(self, args: dict[str, Any], context: CallContext) -> dict[str, Any]:
        """Executed requests per method, fault counts and connections."""
        return {
            "node_id": self._node_id,
            "rpc_count": dict(self._faults.rpc_count),
            "fault_count": dict(self._faults.fault_count),
            **self._connection_counts(),
        }
