"""Fault injection shared by one server and its pool, settable at run time.

It reproduces the course's unreliable accept loop per request: drop 10 % of requests
(not executed); of the rest, execute 20 % but lose the reply. Both, and refusals from a cut
peer or by a deaf server, reach the caller at once as a transport failure, as the course's
closed connection does.
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from typing import Any

REQUEST_DROP_PROBABILITY = 0.1
"""Course: ``rand.Int63()%1000 < 100`` closes the connection before reading the request."""

REPLY_LOSS_PROBABILITY = 0.2
"""Course: of the requests not dropped, ``%1000 < 200`` are executed after SHUT_WR."""


class Fate(enum.Enum):
    """What fault injection does to one request."""

    DELIVER = "deliver"
    DROP = "drop"
    LOSE_REPLY = "lose-reply"


class Faults:
    """Mutable fault settings and counters shared by a server and its pool.

    Attributes:
        unreliable: drop requests and lose replies at the course's rates.
        cut: node ids cut off in both directions: the server refuses their requests and the
            pool refuses calls to them.
        deaf: the server refuses every non-admin request; outbound calls still work.
        deaf_to: node ids whose requests the server refuses, while its own calls to them
            still work (a peer that cannot reach us, but whom we can reach).
        rpc_count: requests actually executed by this server, per method (admin excluded).
        fault_count: requests hit by each fault: ``dropped``, ``reply-lost``, ``deaf``, ``cut``.
    """

    def __init__(self, unreliable: bool = False, *, seed: int | None = None) -> None:
        self.unreliable = unreliable
        self.cut: set[str] = set()
        self.deaf = False
        self.deaf_to: set[str] = set()
        self.rpc_count: Counter[str] = Counter()
        self.fault_count: Counter[str] = Counter()
        self._random = random.Random(seed)

    def paxos_rpc_count(self) -> int:
        """Executed requests whose method starts with ``paxos.``."""
        return sum(n for method, n in self.rpc_count.items() if method.startswith("paxos."))

    def draw(self) -> Fate:
        """Decide the fate of one received request (two independent draws, as the course)."""
        if not self.unreliable:
            return Fate.DELIVER
        if self._random.random() < REQUEST_DROP_PROBABILITY:
            return Fate.DROP
        if self._random.random() < REPLY_LOSS_PROBABILITY:
            return Fate.LOSE_REPLY
        return Fate.DELIVER

    def settings(self) -> dict[str, Any]:
        """Current settings, as returned by ``admin.faults``."""
        return {
            "unreliable": self.unreliable,
            "cut": sorted(self.cut),
            "deaf": self.deaf,
            "deaf_to": sorted(self.deaf_to),
        }

    def update(self, args: dict[str, Any]) -> None:
        """Apply the settings present in `args` (``admin.faults``), all or nothing.

        Raises:
            ValueError: an unknown key or a value of the wrong type.
        """
        unknown = set(args) - {"unreliable", "cut", "deaf", "deaf_to"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(map(str, unknown))}")
        for key in ("unreliable", "deaf"):
            if key in args and not isinstance(args[key], bool):
                raise ValueError(f"{key!r} must be a boolean")
        for key in ("cut", "deaf_to"):
            ids = args.get(key)
            if key in args and (
                not isinstance(ids, list) or not all(isinstance(n, str) for n in ids)
            ):
                raise ValueError(f"{key!r} must be a list of node id strings")
        if "unreliable" in args:
            self.unreliable = args["unreliable"]
        if "deaf" in args:
            self.deaf = args["deaf"]
        if "cut" in args:
            self.cut = set(args["cut"])
        if "deaf_to" in args:
            self.deaf_to = set(args["deaf_to"])
