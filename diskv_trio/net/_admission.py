"""Which requests run: the route's roles, the built-in admin methods, injected faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._faults import Fate, Faults
from ._handler import Handler
from ._protocol import CODE_UNAVAILABLE, CODE_UNKNOWN_METHOD, Identity, Request, error_message
from ._roles import Role

CODE_FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Route:
    """A method's handler and the roles it is served to."""

    handler: Handler
    roles: frozenset[Role]


def admit(
    request: Request,
    caller: Identity,
    routes: Mapping[str, Route],
    admin_routes: Mapping[str, Route],
    faults: Faults,
) -> tuple[Handler | None, bool, bool, dict[str, Any] | None]:
    """Decide what happens to a request: forbidden, admin, refused, unknown, dropped,
    reply lost or delivered. Returns (handler to run or None, count it, deliver its
    reply, a reply to send at once or None)."""
    method = request.method
    admin_route = admin_routes.get(method)
    route = admin_route or routes.get(method)
    if route is None:
        text = f"no method {method!r} here"
        return None, False, False, error_message(request.request_id, CODE_UNKNOWN_METHOD, text)
    if caller.role not in route.roles:
        text = f"{method!r} is not served to the {caller.role} role"
        return None, False, False, error_message(request.request_id, CODE_FORBIDDEN, text)
    if admin_route is not None:
        return admin_route.handler, False, True, None
    refusal = None
    if faults.deaf:
        refusal = "deaf"
    elif caller.node_id in faults.cut:
        refusal = "cut"
    elif caller.node_id in faults.deaf_to:
        refusal = "deaf"
    if refusal is not None:
        faults.fault_count[refusal] += 1
        text = f"refused ({refusal})"
        return None, False, False, error_message(request.request_id, CODE_UNAVAILABLE, text)
    fate = faults.draw()
    if fate is Fate.DROP:
        faults.fault_count["dropped"] += 1
        lost = error_message(request.request_id, CODE_UNAVAILABLE, "request lost")
        return None, False, False, lost
    if fate is Fate.LOSE_REPLY:
        faults.fault_count["reply-lost"] += 1
        lost = error_message(request.request_id, CODE_UNAVAILABLE, "reply lost")
        return route.handler, True, False, lost
    return route.handler, True, True, None
