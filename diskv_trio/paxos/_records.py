"""Paxos journal records: frozen, validated on construction, their wire form, and the replay.

Rules kept here:
- The core hands out records of these types (`Ready.records`); the storage journals
  `record.to_wire()`, a CBOR-able map whose key `"px"` names the kind (`RECORD_KEY`).
- The wire form is the one every earlier version wrote (`{"px": "a", "s": seq, "b": ballot,
  "v": value}` and so on), so a server restarted on this version replays its old journal.
  The one-letter keys stay for that reason and because every promise and accept is one
  record: the codec lives here and nowhere else reads the maps.
- A record is validated when built (before `append`) and again when decoded after replay
  (`record_from_wire`); a malformed one raises `PaxosProtocolError`, never an assert.
- `restore_state` rebuilds a peer from `snapshot_state()` and the records after it; the
  state it rebuilds and the snapshot form are in `_snapshot.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ._ballot import Ballot
from ._errors import PaxosProtocolError
from ._snapshot import InstanceState, PaxosRestoredState, dones_from_wire, restore_snapshot

RECORD_KEY = "px"  # every Paxos journal record is a map with this key naming its kind


def _check_int(record: str, name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise PaxosProtocolError(f"record {record!r}: field {name!r} is {value!r}")


def _check_ballot(record: str, value: Any) -> None:
    if not isinstance(value, Ballot):
        raise PaxosProtocolError(f"record {record!r}: ballot is {value!r}")


@dataclass(frozen=True, slots=True)
class PromiseRecord:
    """The acceptor promised `ballot` in instance `seq` (synced before the promise leaves)."""

    KIND: ClassVar[str] = "p"
    seq: int
    ballot: Ballot

    def __post_init__(self) -> None:
        _check_int(self.KIND, "s", self.seq, 0)
        _check_ballot(self.KIND, self.ballot)

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND, "s": self.seq, "b": self.ballot.to_wire()}


@dataclass(frozen=True, slots=True)
class AcceptRecord:
    """The acceptor accepted `value` at `ballot` in `seq` (and promised `ballot` with it)."""

    KIND: ClassVar[str] = "a"
    seq: int
    ballot: Ballot
    value: Any

    def __post_init__(self) -> None:
        _check_int(self.KIND, "s", self.seq, 0)
        _check_ballot(self.KIND, self.ballot)

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND, "s": self.seq, "b": self.ballot.to_wire(), "v": self.value}


@dataclass(frozen=True, slots=True)
class DecideRecord:
    """Instance `seq` is decided. Needs no sync: a decision can always be learned again.

    When the decided value is the one this acceptor accepted, `carries_value` is False and
    `value` None: the accept record before it holds the value, which is journalled once.
    """

    KIND: ClassVar[str] = "d"
    seq: int
    value: Any
    carries_value: bool = True

    def __post_init__(self) -> None:
        _check_int(self.KIND, "s", self.seq, 0)
        if not self.carries_value and self.value is not None:
            raise PaxosProtocolError("record 'd': a value without carries_value")

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {RECORD_KEY: self.KIND, "s": self.seq}
        if self.carries_value:
            wire["v"] = self.value
        return wire


@dataclass(frozen=True, slots=True)
class RangePromiseRecord:
    """The acceptor promised `ballot` for every instance >= `seq` (synced before the range
    promise leaves). It replaces the previous range promise, whose ballot was lower."""

    KIND: ClassVar[str] = "rp"
    seq: int
    ballot: Ballot

    def __post_init__(self) -> None:
        _check_int(self.KIND, "s", self.seq, 0)
        _check_ballot(self.KIND, self.ballot)

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND, "s": self.seq, "b": self.ballot.to_wire()}


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """The epoch state: ballots below `threshold` are rejected; the fence that set it had
    `threshold_nonce` (0 if learned otherwise); `established` may ride in ballots."""

    KIND: ClassVar[str] = "e"
    threshold: int
    threshold_nonce: int
    established: int

    def __post_init__(self) -> None:
        _check_int(self.KIND, "th", self.threshold, 0)
        _check_int(self.KIND, "n", self.threshold_nonce, 0)
        _check_int(self.KIND, "es", self.established, 0)

    def to_wire(self) -> dict[str, Any]:
        return {
            RECORD_KEY: self.KIND,
            "th": self.threshold,
            "n": self.threshold_nonce,
            "es": self.established,
        }


@dataclass(frozen=True, slots=True)
class FloorRecord:
    """The fence after a disk loss completed: never vote at or below `floor`; voting again."""

    KIND: ClassVar[str] = "f"
    floor: int

    def __post_init__(self) -> None:
        _check_int(self.KIND, "f", self.floor, -1)

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND, "f": self.floor}


@dataclass(frozen=True, slots=True)
class RecoveringRecord:
    """The peer lost its disk and runs the fence: a restart before it completes resumes it."""

    KIND: ClassVar[str] = "r"

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND}


@dataclass(frozen=True, slots=True)
class MinRecord:
    """`min()` advanced to `min`; `dones` holds the other peers' done values, as (peer, done)."""

    KIND: ClassVar[str] = "m"
    min: int
    dones: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        _check_int(self.KIND, "m", self.min, 0)
        for pair in self.dones:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise PaxosProtocolError(f"record 'm': done entry {pair!r}")
            _check_int(self.KIND, "dn peer", pair[0], 0)
            _check_int(self.KIND, "dn done", pair[1], -1)

    def to_wire(self) -> dict[str, Any]:
        return {RECORD_KEY: self.KIND, "m": self.min, "dn": {str(p): d for p, d in self.dones}}


PaxosRecord = (
    PromiseRecord
    | AcceptRecord
    | DecideRecord
    | EpochRecord
    | FloorRecord
    | RecoveringRecord
    | MinRecord
    | RangePromiseRecord
)
RECORD_TYPES: tuple[type[PaxosRecord], ...] = (
    PromiseRecord,
    AcceptRecord,
    DecideRecord,
    EpochRecord,
    FloorRecord,
    RecoveringRecord,
    MinRecord,
    RangePromiseRecord,
)


def describe_record(record: PaxosRecord) -> str:
    """One short line for transcripts and logs, e.g. ``accept seq=3 ballot=0.1.2 value='x'``."""
    name = type(record).__name__.removesuffix("Record").lower()
    parts = [name]
    for item in dataclasses.fields(record):
        key = item.name
        value = getattr(record, key)
        if isinstance(value, Ballot):
            value = f"{value.epoch}.{value.round}.{value.peer}"
        elif key == "carries_value":
            continue
        elif key == "value" and isinstance(record, DecideRecord) and not record.carries_value:
            value = "(the accepted one)"
        elif isinstance(value, tuple):
            value = ",".join(f"{p}:{d}" for p, d in value)
        else:
            value = repr(value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _wire_int(wire: Mapping[str, Any], key: str) -> int:
    value = wire.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PaxosProtocolError(f"record {wire.get(RECORD_KEY)!r}: field {key!r} is {value!r}")
    return value


def is_paxos_record(record: Any) -> bool:
    """True for the wire maps this package journals (the application may interleave its own)."""
    return isinstance(record, dict) and RECORD_KEY in record


def record_from_wire(wire: Any) -> PaxosRecord:
    """Decode and validate one journalled record (the map `to_wire()` made).

    Raises:
        PaxosProtocolError: not a Paxos record, an unknown kind, or a malformed field.
    """
    if not is_paxos_record(wire):
        raise PaxosProtocolError(f"not a Paxos record: {wire!r:.80}")
    kind = wire[RECORD_KEY]
    if kind == "p":
        return PromiseRecord(_wire_int(wire, "s"), Ballot.from_wire(wire.get("b")))
    if kind == "a":
        return AcceptRecord(_wire_int(wire, "s"), Ballot.from_wire(wire.get("b")), wire.get("v"))
    if kind == "d":
        seq = _wire_int(wire, "s")
        if "v" in wire:
            return DecideRecord(seq, wire["v"])
        return DecideRecord(seq, None, carries_value=False)
    if kind == "e":
        return EpochRecord(_wire_int(wire, "th"), _wire_int(wire, "n"), _wire_int(wire, "es"))
    if kind == "f":
        return FloorRecord(_wire_int(wire, "f"))
    if kind == "r":
        return RecoveringRecord()
    if kind == "rp":
        return RangePromiseRecord(_wire_int(wire, "s"), Ballot.from_wire(wire.get("b")))
    if kind == "m":
        dones = dones_from_wire(wire.get("dn"))
        return MinRecord(_wire_int(wire, "m"), tuple(dones.items()))
    raise PaxosProtocolError(f"unknown Paxos record kind {kind!r}")


def restore_state(
    snapshot_state: Mapping[str, Any] | None, records: Iterable[PaxosRecord | Mapping[str, Any]]
) -> PaxosRestoredState:
    """Rebuild a peer's state from `snapshot_state()` and the records journalled after it.

    Records may be typed or their wire maps as the journal replays them (decoded and
    validated here); maps that are not Paxos records are skipped. The own done value comes
    from the snapshot only: instances the application had not captured yet stay available.

    Raises:
        PaxosProtocolError: a malformed snapshot or record.
    """
    state = PaxosRestoredState() if snapshot_state is None else restore_snapshot(snapshot_state)
    for raw in records:
        if isinstance(raw, RECORD_TYPES):
            record: PaxosRecord = raw
        elif is_paxos_record(raw):
            record = record_from_wire(raw)
        else:
            continue
        _replay(state, record)
    return state


def _replay(state: PaxosRestoredState, record: PaxosRecord) -> None:
    if isinstance(record, PromiseRecord | AcceptRecord | DecideRecord):
        seq = record.seq
        state.max = max(state.max, seq)
        if seq < state.min:
            return
        inst = state.instances.setdefault(seq, InstanceState())
        if isinstance(record, DecideRecord):
            if record.carries_value:
                inst.value = record.value
            elif inst.accepted is None:
                raise PaxosProtocolError(f"decided record for {seq} without value or accept")
            inst.decided = True
        elif inst.decided:
            return
        else:
            inst.promised = record.ballot
            if isinstance(record, AcceptRecord):
                inst.accepted = record.ballot
                inst.value = record.value
    elif isinstance(record, RangePromiseRecord):
        state.range_promise = (record.ballot, record.seq)
    elif isinstance(record, EpochRecord):
        state.threshold = record.threshold
        state.threshold_nonce = record.threshold_nonce
        state.established = record.established
    elif isinstance(record, FloorRecord):
        state.floor = record.floor
        state.max = max(state.max, state.floor)
        state.recovering = False
    elif isinstance(record, RecoveringRecord):
        state.recovering = True
    else:
        # min() never passes the application's own done value from the snapshot: the
        # instances after it are re-applied from these records after a restart, so
        # they must survive the replay even if everyone had forgotten them before.
        state.min = max(state.min, min(record.min, state.own_done + 1))
        for peer, done in record.dones:
            state.dones[peer] = max(state.dones.get(peer, -1), done)
        for seq in [s for s in state.instances if s < state.min]:
            del state.instances[seq]
