"""The state a Paxos peer resumes from, and its snapshot form.

Rules kept here:
- `PaxosRestoredState` is what `PaxosCore` is built from after a restart: the snapshot
  (`PaxosCore.snapshot_state()`, made by `snapshot_to_wire`) with the journal records
  after it replayed on top (`restore_state` in `_records.py`).
- A snapshot map carries `format`; one of an unknown format, or with a malformed field,
  raises `PaxosProtocolError`, never an assert. Snapshots written before range promises
  existed have no `range` and still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._ballot import Ballot, ballot_from_wire, ballot_to_wire
from ._errors import PaxosProtocolError

SNAPSHOT_FORMAT = 1


@dataclass(slots=True)
class InstanceState:
    """Acceptor and learner state of one instance. `value` is the decided value once decided."""

    promised: Ballot | None = None
    accepted: Ballot | None = None
    value: Any = None
    decided: bool = False


@dataclass(slots=True)
class PaxosRestoredState:
    """Everything `PaxosCore` needs to resume after a restart with the disk intact."""

    instances: dict[int, InstanceState] = field(default_factory=dict)
    dones: dict[int, int] = field(default_factory=dict)  # other peers' done values
    own_done: int = -1  # from the snapshot only: the application calls done() again
    min: int = 0
    max: int = -1
    threshold: int = 0
    threshold_nonce: int = 0
    established: int = 0
    floor: int = -1
    recovering: bool = False
    range_promise: tuple[Ballot, int] | None = None  # (ballot, first instance it covers)


def snapshot_to_wire(state: PaxosRestoredState) -> dict[str, Any]:
    """The snapshot map of a live peer's state (`PaxosCore.snapshot_state`)."""
    return {
        "format": SNAPSHOT_FORMAT,
        "instances": [
            [seq, ballot_to_wire(i.promised), ballot_to_wire(i.accepted), i.value, i.decided]
            for seq, i in sorted(state.instances.items())
        ],
        "dones": {str(p): d for p, d in sorted(state.dones.items())},
        "own_done": state.own_done,
        "min": state.min,
        "max": state.max,
        "threshold": state.threshold,
        "threshold_nonce": state.threshold_nonce,
        "established": state.established,
        "floor": state.floor,
        "recovering": state.recovering,
        "range": None
        if state.range_promise is None
        else [state.range_promise[0].to_wire(), state.range_promise[1]],
    }


_SNAPSHOT_INTS = (
    "own_done",
    "min",
    "max",
    "threshold",
    "threshold_nonce",
    "established",
    "floor",
)


def restore_snapshot(snapshot_state: Mapping[str, Any]) -> PaxosRestoredState:
    """The state a snapshot map holds (the records journalled after it are replayed on it)."""
    if snapshot_state.get("format") != SNAPSHOT_FORMAT:
        raise PaxosProtocolError(f"unknown snapshot format {snapshot_state.get('format')!r}")
    state = PaxosRestoredState()
    try:
        for row in snapshot_state["instances"]:
            seq, promised, accepted, value, decided = row
            state.instances[int(seq)] = InstanceState(
                promised=ballot_from_wire(promised),
                accepted=ballot_from_wire(accepted),
                value=value,
                decided=bool(decided),
            )
        state.dones = dones_from_wire(snapshot_state["dones"])
        state.recovering = bool(snapshot_state["recovering"])
        raw_range = snapshot_state.get("range")  # absent in snapshots of older versions
        if raw_range is not None:
            state.range_promise = (Ballot.from_wire(raw_range[0]), int(raw_range[1]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PaxosProtocolError(f"malformed Paxos snapshot: {exc!r}") from exc
    for key in _SNAPSHOT_INTS:
        value = snapshot_state.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise PaxosProtocolError(f"Paxos snapshot: field {key!r} is {value!r}")
        setattr(state, key, value)
    return state


def dones_from_wire(raw: Any) -> dict[int, int]:
    """A {peer: done} map as journalled (keys are strings on the wire)."""
    if not isinstance(raw, dict):
        raise PaxosProtocolError(f"bad done map {raw!r}")
    try:
        return {int(k): int(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise PaxosProtocolError(f"bad done map {raw!r}") from exc
