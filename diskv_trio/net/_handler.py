"""What a handler is given and returns, and how its failures are described."""

from __future__ import annotations

import os
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a handler knows about the call: the method and the caller's authenticated
    role and id (as claimed, on a server run without credentials)."""

    method: str
    peer_role: str
    peer_id: str


Handler = Callable[[dict[str, Any], CallContext], Awaitable[dict[str, Any]]]


def describe_exception(exc: BaseException) -> str:
    """One line naming an exception and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}"
        if frames
        else ""
    )
    return f"{type(exc).__name__}: {exc}{where}"


