"""One journal per server process, shared by Paxos and the application.

Every record is a CBOR map tagged by its owner (`{"px": ...}` for Paxos); a snapshot holds
both layers at one LSN, so they can never disagree after a restart. Appends happen on the
Trio thread; syncs and snapshot writes run in a worker thread through group commit, so many
concurrent callers share one fdatasync.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cbor2

from journal import GroupCommit, Journal

SNAPSHOT_FORMAT_VERSION = 1


class StorageFormatError(Exception):
    """Raised when a journal holds records this version cannot read (not ours, or newer)."""


class ServerStorage:
    """The server's journal seen as tagged CBOR records and whole-state snapshots.

    It implements the Paxos peer's storage interface (`append`, `sync`).
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._group_commit = GroupCommit(journal)
        self.snapshots_written = 0

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
            state = cbor2.loads(raw)
        except Exception as exc:
            raise StorageFormatError(f"snapshot is not CBOR: {exc}") from exc
        if not isinstance(state, dict) or state.get("v") != SNAPSHOT_FORMAT_VERSION:
            raise StorageFormatError("snapshot has an unknown format version")
        return state

    def paxos_records(self) -> Iterator[dict[str, Any]]:
        """Paxos records after the snapshot, in journal order (valid right after open)."""
        for lsn, payload in self._journal:
            try:
                record = cbor2.loads(payload)
            except Exception as exc:
                raise StorageFormatError(f"record {lsn} is not CBOR: {exc}") from exc
            if not isinstance(record, dict):
                raise StorageFormatError(f"record {lsn} is not a map")
            if "px" in record:
                yield record["px"]

    def append(self, record: dict[str, Any]) -> None:
        """Add a Paxos record; durable once a later `sync()` returns."""
        self._journal.append(cbor2.dumps({"px": record}))

    async def sync(self) -> None:
        """Return once everything appended so far is durable (shared fdatasync)."""
        await self._group_commit.sync()

    def should_compact(self, *, idle: bool) -> bool:
        return self._journal.should_compact(idle=idle)

    async def snapshot(self, state: dict[str, Any]) -> None:
        """Write `state` (both layers, captured now) as the snapshot covering every record so far."""
        upto_lsn = self._journal.last_lsn
        data = cbor2.dumps({"v": SNAPSHOT_FORMAT_VERSION} | state)
        await self._group_commit.snapshot(data, upto_lsn)
        self.snapshots_written += 1

    def bytes_on_disk(self) -> int:
        return self._journal.bytes_since_snapshot + self._journal.snapshot_bytes
