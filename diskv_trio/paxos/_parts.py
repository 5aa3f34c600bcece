"""The parts a `PaxosCore` is assembled from, named in one place.

Every server builds its core from the defaults. Each rule of DESIGN.md section 4 is kept by
one small method of one part, so a variant that replaces a part (the Paxos tests break one
rule on purpose this way, and require the simulations to catch it) changes that rule and
nothing else, without any switch inside the protocol code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._acceptor import Acceptor
from ._fence import Fencer
from ._leader import Leader
from ._learner import Learner
from ._proposer import Proposer


@dataclass(frozen=True, slots=True)
class CoreParts:
    """The class of each part; each is constructed with the core (and its own randomness)."""

    acceptor: type[Acceptor] = Acceptor
    proposer: type[Proposer] = Proposer
    fencer: type[Fencer] = Fencer
    leader: type[Leader] = Leader
    learner: type[Learner] = Learner


DEFAULT_PARTS = CoreParts()
