"""Ballots: `(epoch, round, peer)`, compared in that order.

The epoch comes first so that a fence at a higher epoch outranks every ballot of an
older epoch; the round orders a proposer's retries; the peer id breaks ties so that two
proposers never share a ballot.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._errors import PaxosProtocolError


class Ballot(NamedTuple):
    """A proposal number. Tuples compare lexicographically, which is the order we need."""

    epoch: int
    round: int
    peer: int

    def to_wire(self) -> list[int]:
        return [self.epoch, self.round, self.peer]

    @staticmethod
    def from_wire(raw: Any) -> Ballot:
        """Decode a ballot from a peer or the journal.

        Raises:
            PaxosProtocolError: `raw` is not a list of three non-negative ints.
        """
        if (
            not isinstance(raw, list | tuple)
            or len(raw) != 3
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw)
            or raw[0] < 0
            or raw[1] < 0
            or raw[2] < 0
        ):
            raise PaxosProtocolError(f"bad ballot {raw!r}")
        return Ballot(raw[0], raw[1], raw[2])


def ballot_to_wire(ballot: Ballot | None) -> list[int] | None:
    return None if ballot is None else ballot.to_wire()


def ballot_from_wire(raw: Any) -> Ballot | None:
    return None if raw is None else Ballot.from_wire(raw)
