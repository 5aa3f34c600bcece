"""One journal per server process, shared by Paxos and the application.

Every record is a CBOR map tagged by its owner (`{"px": ...}` for Paxos); a snapshot holds
both layers at one LSN, so they can never disagree after a restart. Appends happen on the
Trio thread; syncs and snapshot writes run in a worker thread through group commit, so many
concurrent callers share one fdatasync.

Records and snapshots are decoded with an explicit nesting bound, `STORAGE_DEPTH_MAX`, far
above the wire's (`net` refuses frames nested deeper than 32 levels): anything a peer or a
client could send, once wrapped in an Accept record or a snapshot, still reads back, so a
value accepted once can never make the journal unreadable.

A full disk raises the NOSPACE alarm (see `_alarm.py`): `sync()` then waits, retrying, until
its records are durable, so Paxos simply does not answer meanwhile; `snapshot()` raises
`JournalNoSpaceError` and its caller tries again later.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cbor2
import trio

from diskv_trio import _metrics
from diskv_trio.net import WIRE_DEPTH_MAX
from diskv_trio.paxos import PaxosRecord
from journal import GroupCommit, Journal, JournalNoSpaceError, RunSync

from ._alarm import NoSpaceAlarm

SNAPSHOT_FORMAT_VERSION = 1

STORAGE_DEPTH_MAX = 128
"""Deepest nesting decoded from a journal record or snapshot.

Measured (tests/rsm/test_rsm_hostile_values.py): a Paxos value nested `d` levels sits at
depth d + 2 in its journal record (``{"px": {..., "v": value}}``) and d + 4 in a snapshot
(``{"paxos": {"instances": [[..., value, ...]]}}``); a log entry adds 3 more around an op's
field (``{"ops": [{field: value}]}``). A whole frame of 32 levels therefore needs at most 39;
128 leaves a margin of 89 levels for future wrapping, and is far below Python's recursion
limit."""

STORAGE_WRAP_DEPTH_MAX = 7
"""Levels that a snapshot (4) and a log entry (3) add around a value that came off the wire."""

assert STORAGE_WRAP_DEPTH_MAX + WIRE_DEPTH_MAX < STORAGE_DEPTH_MAX


class StorageFormatError(Exception):
    """Raised when a journal holds records this version cannot read (not ours, or newer)."""


def decode_stored(data: bytes) -> Any:
    """Decode one journal record or snapshot, nested at most `STORAGE_DEPTH_MAX` levels.

    Raises:
        cbor2.CBORDecodeError: the bytes are not CBOR or are nested deeper.
    """
    return cbor2.loads(data, max_depth=STORAGE_DEPTH_MAX)


class ServerStorage:
    """The server's journal seen as tagged CBOR records and whole-state snapshots.

    It implements the Paxos peer's storage interface (`append`, `sync`). Syncs and snapshots
    run through `run_sync` (a worker thread unless the disk says otherwise, see `Disk`).
    """

    def __init__(self, journal: Journal, *, run_sync: RunSync | None = None) -> None:
        self._journal = journal
        self._group_commit = GroupCommit(journal, run_sync=run_sync)
        self.snapshots_written = 0
        self.alarm = NoSpaceAlarm()

    @property
    def journal(self) -> Journal:
        return self._journal

    def loaded_state(self) -> dict[str, Any] | None:
        """The snapshot found when the journal was opened, decoded."""
        loaded = self._journal.loaded_snapshot
        if loaded is None:
            return None
        _lsn, raw = loaded
        try:
            state = decode_stored(raw)
        except Exception as exc:
            raise StorageFormatError(f"snapshot is not CBOR: {exc}") from exc
        if not isinstance(state, dict) or state.get("v") != SNAPSHOT_FORMAT_VERSION:
            raise StorageFormatError("snapshot has an unknown format version")
        return state

    def paxos_records(self) -> Iterator[dict[str, Any]]:
        """Paxos records after the snapshot, in journal order (valid right after open)."""
        for lsn, payload in self._journal:
            try:
                record = decode_stored(payload)
            except Exception as exc:
                raise StorageFormatError(f"record {lsn} is not CBOR: {exc}") from exc
            if not isinstance(record, dict):
                raise StorageFormatError(f"record {lsn} is not a map")
            if "px" in record:
                yield record["px"]

    def append(self, record: PaxosRecord) -> None:
        """Add a Paxos record as ``{"px": record.to_wire()}``; durable once a later `sync()`
        returns."""
        payload = cbor2.dumps({"px": record.to_wire()})
        self._journal.append(payload)
        _metrics.JOURNAL_APPENDS.inc()
        _metrics.JOURNAL_APPEND_BYTES.inc(len(payload))

    async def sync(self) -> None:
        """Return once everything appended so far is durable (shared fdatasync).

        On a full disk this waits (the alarm raised) until a retry succeeds: never raises
        for lack of space, and never returns before the records are durable.
        """
        started, syncs_before = trio.current_time(), self._group_commit.sync_count
        while True:
            try:
                await self._group_commit.sync()
            except JournalNoSpaceError as exc:
                self.alarm.raise_alarm("journal", exc)
                await self.alarm.wait_retry_turn()
                continue
            self.alarm.clear("journal")
            _metrics.JOURNAL_SYNCS.inc(self._group_commit.sync_count - syncs_before)
            _metrics.JOURNAL_SYNC_SECONDS.observe(trio.current_time() - started)
            return

    @property
    def sync_count(self) -> int:
        """Journal syncs run so far; one covers every caller waiting then (group commit)."""
        return self._group_commit.sync_count

    def should_compact(self, *, idle: bool) -> bool:
        return self._journal.should_compact(idle=idle)

    async def snapshot(self, state: dict[str, Any]) -> None:
        """Write `state` (both layers, captured now) as the snapshot covering every record so far.

        Raises:
            JournalNoSpaceError: the disk is full (the alarm is raised; nothing changed).
        """
        upto_lsn = self._journal.last_lsn
        data = cbor2.dumps({"v": SNAPSHOT_FORMAT_VERSION} | state)
        started = trio.current_time()
        try:
            await self._group_commit.snapshot(data, upto_lsn)
        except JournalNoSpaceError as exc:
            self.alarm.raise_alarm("snapshot", exc)
            raise
        self.alarm.clear("snapshot")
        self.snapshots_written += 1
        _metrics.SNAPSHOT_BYTES.observe(len(data))
        _metrics.SNAPSHOT_SECONDS.observe(trio.current_time() - started)

    @property
    def snapshot_failed(self) -> bool:
        """The last snapshot failed for lack of space (the compaction loop retries it)."""
        return self.alarm.has_cause("snapshot")

    def bytes_on_disk(self) -> int:
        return self._journal.bytes_since_snapshot + self._journal.snapshot_bytes
