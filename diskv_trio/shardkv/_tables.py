"""A shard's contents: its data and its duplicate table, and their checks and sizes.

Rules kept here:
- Data maps key bytes to value bytes; an absent key has no entry (an empty value is b"").
- The duplicate table maps a client id to the last write it had applied to the shard:
  its sequence number and its result (a delete's "existed", a compare-and-set's "written",
  None for put and append), so a retried write is answered as the first time, not re-run.
- Its wire form (snapshots, hand-offs) is ``{client: [seq, result]}``; a bare ``seq`` is the
  previous version's form and reads as ``[seq, None]`` (that version had only put/append).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..kvproto import KEY_BYTES_MAX, VALUE_BYTES_MAX, Sharding, as_bytes, check_client, check_number

SEQ_BYTES = 8
"""Bytes counted per duplicate-table entry for its sequence number in `live_bytes`."""


class Applied(NamedTuple):
    """The last write of one client on one shard."""

    seq: int
    result: bool | None = None


ShardData = dict[bytes, bytes]
DedupTable = dict[str, Applied]


def check_data(data: object, shard: int, sharding: Sharding, what: str) -> ShardData:
    """`data` as a shard's data: bounded keys (all in `shard`) and values.

    Raises:
        ValueError: naming `what` and the problem.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what}: data must be a map, got {type(data).__name__}")
    checked: ShardData = {}
    for raw_key, raw_value in data.items():
        key = as_bytes(raw_key, f"{what} key", KEY_BYTES_MAX)
        if sharding.shard_of(key) != shard:
            raise ValueError(f"{what}: key {key!r:.80} is not in shard {shard}")
        if key in checked:
            raise ValueError(f"{what}: key {key!r:.80} appears twice")
        checked[key] = as_bytes(raw_value, f"{what} value", VALUE_BYTES_MAX)
    return checked


def check_dedup(dedup: object, what: str) -> DedupTable:
    """`dedup` in its wire form (or the previous version's) as a duplicate table.

    Raises:
        ValueError: naming `what` and the problem.
    """
    if not isinstance(dedup, Mapping):
        raise ValueError(f"{what}: dedup must be a map, got {type(dedup).__name__}")
    table: DedupTable = {}
    try:
        for client, entry in dedup.items():
            if isinstance(entry, list | tuple):
                if len(entry) != 2 or entry[1] not in (None, True, False) or not (
                    entry[1] is None or isinstance(entry[1], bool)
                ):
                    raise ValueError("entry must be [seq, result]")
                applied = Applied(check_number(entry[0], "seq"), entry[1])
            else:
                applied = Applied(check_number(entry, "seq"))
            table[check_client(client)] = applied
    except ValueError as error:
        raise ValueError(f"{what}: dedup: {error}") from None
    return table


def dedup_to_wire(dedup: DedupTable) -> dict[str, Any]:
    return {client: [applied.seq, applied.result] for client, applied in dedup.items()}


def merge_dedup(ours: DedupTable, theirs: DedupTable) -> DedupTable:
    """Per client, the entry with the higher sequence number."""
    merged = dict(ours)
    for client, applied in theirs.items():
        mine = merged.get(client)
        if mine is None or applied.seq > mine.seq:
            merged[client] = applied
    return merged


def shard_bytes(data: ShardData, dedup: DedupTable) -> int:
    """Approximate bytes held for one shard: keys, values and duplicate-table entries."""
    return sum(len(k) + len(v) for k, v in data.items()) + sum(
        len(client) + SEQ_BYTES for client in dedup
    )
