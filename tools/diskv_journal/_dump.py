"""Decoding a server journal's records and snapshot for `diskv-journal dump`.

Rules kept here:
- A record the Paxos layer wrote (``{"px": ...}``) is decoded by `record_from_wire`, the one
  codec of those maps, and shown by kind (``promise``, ``accept``, ``decide``,
  ``range-promise``, ``epoch``, ``floor``, ``recovering``, ``min``) with the record type's
  field names; nothing here knows the one-letter wire keys.
- Any other CBOR payload is kind ``other`` and shown as decoded; a payload that is not CBOR
  (or a Paxos map that does not validate) is kind ``undecodable`` and shown as bytes.
- A snapshot's keys are those of a shardkv replica's state machine, by shard; a
  shardmaster's snapshot has no keys and shows its sections only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from diskv_trio.paxos import Ballot, PaxosProtocolError, PaxosRecord, record_from_wire
from diskv_trio.rsm._storage import decode_stored
from diskv_trio.shardkv import ShardKVState

PAXOS_KINDS = (
    "promise",
    "accept",
    "decide",
    "range-promise",
    "epoch",
    "floor",
    "recovering",
    "min",
)
OTHER_KINDS = ("other", "undecodable")
KINDS = PAXOS_KINDS + OTHER_KINDS
"""Every kind `decode_record` names (the choices of ``dump --kind``)."""

BYTES_SHOWN_MAX = 32
"""Bytes values longer than this are shown cut, with their length."""


class DumpRecord(NamedTuple):
    """One record as shown: its kind and its fields by name (values made printable later)."""

    kind: str
    fields: dict[str, Any]


def kind_of(record: PaxosRecord) -> str:
    """``AcceptRecord`` -> ``accept``, ``RangePromiseRecord`` -> ``range-promise``."""
    name = type(record).__name__.removesuffix("Record")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def decode_record(payload: bytes) -> DumpRecord:
    """The kind and named fields of one journal payload; never raises."""
    try:
        decoded = decode_stored(payload)
    except Exception:  # any undecodable payload is shown raw
        return DumpRecord("undecodable", {"bytes": payload})
    if not (isinstance(decoded, dict) and "px" in decoded):
        return DumpRecord("other", {"cbor": decoded})
    try:
        record = record_from_wire(decoded["px"])
    except PaxosProtocolError as error:
        return DumpRecord("undecodable", {"bytes": payload, "error": str(error)})
    fields = {item.name: getattr(record, item.name) for item in dataclasses.fields(record)}
    if fields.pop("carries_value", True) is False:
        fields["value"] = "(the accepted one)"
    if "dones" in fields:
        fields["dones"] = {str(peer): done for peer, done in fields["dones"]}
    return DumpRecord(kind_of(record), fields)


def show(value: Any, *, as_json: bool) -> Any:
    """`value` made printable: bytes as hex with their length, ballots as epoch.round.peer."""
    if isinstance(value, Ballot):
        return f"{value.epoch}.{value.round}.{value.peer}"
    if isinstance(value, bytes | bytearray):
        shown = bytes(value[:BYTES_SHOWN_MAX]).hex() + (
            "..." if len(value) > BYTES_SHOWN_MAX else ""
        )
        return {"hex": shown, "len": len(value)} if as_json else f"h'{shown}'({len(value)})"
    if isinstance(value, dict):
        return {str(show(k, as_json=as_json)): show(v, as_json=as_json) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [show(v, as_json=as_json) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


class SnapshotKey(NamedTuple):
    """One key held in a snapshot: where (a shard, or a hand-off kept for the next owner)."""

    where: str
    key: bytes
    value_bytes: int


def snapshot_sections(state: bytes) -> dict[str, Any]:
    """The snapshot's top-level sections: format version, applied index, which layers."""
    decoded = decode_stored(state)
    if not isinstance(decoded, dict):
        return {"undecodable": True}
    return {
        "version": decoded.get("v"),
        "applied": decoded.get("applied"),
        "sections": sorted(str(k) for k in decoded if k != "v"),
    }


def snapshot_keys(state: bytes) -> Iterator[SnapshotKey]:
    """Every key of a shardkv snapshot, by shard then key; nothing for other snapshots.

    Raises:
        ValueError: the snapshot holds a shardkv state that does not validate.
    """
    decoded = decode_stored(state)
    machine = decoded.get("machine") if isinstance(decoded, dict) else None
    if not (isinstance(machine, dict) and "shards" in machine):
        return
    kv = ShardKVState.restore(machine)
    for shard in sorted(kv.present_shards):
        data = kv.shard_data(shard) or {}
        for key in sorted(data):
            yield SnapshotKey(f"shard {shard}", key, len(data[key]))
    for config_num, shard in kv.handoff_keys():
        handoff = kv.handoff(config_num, shard)
        assert handoff is not None
        for key in sorted(handoff[0]):
            yield SnapshotKey(f"handoff {shard}@{config_num}", key, len(handoff[0][key]))
