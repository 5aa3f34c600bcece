"""Journal records: typed, validated, and written exactly as the previous version wrote them.

One case table drives encode and decode: each typed record and the literal map the version
before typed records journalled for it. A journal written by that version (built here from
those literal maps, through a real `journal.Journal`, with a snapshot in its format) is
replayed by the server's wiring and gives the state it held.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
import trio

import journal as journal_pkg
from diskv_trio.paxos import (
    AcceptRecord,
    Ballot,
    DecideRecord,
    EpochRecord,
    Fate,
    FloorRecord,
    MinRecord,
    PaxosPeer,
    PaxosProtocolError,
    PaxosUnreachable,
    PromiseRecord,
    RecoveringRecord,
    record_from_wire,
    restore_state,
)
from diskv_trio.rsm import ServerStorage
from diskv_trio.rsm._paxos_wiring import restore_paxos

CASES: list[tuple[Any, dict[str, Any]]] = [
    (PromiseRecord(5, Ballot(0, 1, 2)), {"px": "p", "s": 5, "b": [0, 1, 2]}),
    (
        AcceptRecord(5, Ballot(1, 2, 0), {"op": [1, b"x"]}),
        {"px": "a", "s": 5, "b": [1, 2, 0], "v": {"op": [1, b"x"]}},
    ),
    (AcceptRecord(6, Ballot(0, 1, 0), None), {"px": "a", "s": 6, "b": [0, 1, 0], "v": None}),
    (DecideRecord(5, None, carries_value=False), {"px": "d", "s": 5}),
    (DecideRecord(7, None), {"px": "d", "s": 7, "v": None}),
    (DecideRecord(7, "w"), {"px": "d", "s": 7, "v": "w"}),
    (EpochRecord(3, 1 << 40, 2), {"px": "e", "th": 3, "n": 1 << 40, "es": 2}),
    (FloorRecord(9), {"px": "f", "f": 9}),
    (FloorRecord(-1), {"px": "f", "f": -1}),
    (RecoveringRecord(), {"px": "r"}),
    (MinRecord(4, ((1, 3), (2, -1))), {"px": "m", "m": 4, "dn": {"1": 3, "2": -1}}),
]


@pytest.mark.parametrize(("record", "wire"), CASES)
def test_records_encode_as_before_and_decode_back(record: Any, wire: dict[str, Any]) -> None:
    assert record.to_wire() == wire
    again = cbor2.loads(cbor2.dumps(wire))  # as the journal replays it
    assert record_from_wire(again) == record


@pytest.mark.parametrize(
    "wire",
    [
        {"px": "p", "s": "x", "b": [0, 1, 0]},
        {"px": "p", "s": -1, "b": [0, 1, 0]},
        {"px": "p", "s": 1, "b": [0, 1]},
        {"px": "a", "s": True, "b": [0, 1, 0], "v": 1},
        {"px": "e", "th": 1, "n": 0},
        {"px": "f", "f": -2},
        {"px": "m", "m": 1, "dn": [1, 2]},
        {"px": "m", "m": 1, "dn": {"x": 1}},
        {"px": "zz"},
        {"app": 1},
        [1, 2],
    ],
)
def test_malformed_records_are_refused(wire: Any) -> None:
    with pytest.raises(PaxosProtocolError):
        record_from_wire(wire)


def test_records_are_validated_when_built() -> None:
    with pytest.raises(PaxosProtocolError):
        PromiseRecord(-1, Ballot(0, 1, 0))
    with pytest.raises(PaxosProtocolError):
        AcceptRecord(1, [0, 1, 0], "v")  # type: ignore[arg-type]
    with pytest.raises(PaxosProtocolError):
        DecideRecord(1, "v", carries_value=False)
    with pytest.raises(PaxosProtocolError):
        MinRecord(1, ((1,),))  # type: ignore[arg-type]


# What the version before typed records wrote: its snapshot_state() and its record maps.
OLD_SNAPSHOT = {
    "format": 1,
    "instances": [[0, [0, 1, 1], [0, 1, 1], "zero", True], [1, [0, 2, 2], None, None, False]],
    "dones": {"1": -1, "2": 0},
    "own_done": -1,
    "min": 0,
    "max": 1,
    "threshold": 0,
    "threshold_nonce": 0,
    "established": 0,
    "floor": -1,
    "recovering": False,
}
OLD_RECORDS: list[dict[str, Any]] = [
    {"px": "p", "s": 1, "b": [0, 3, 1]},
    {"px": "a", "s": 1, "b": [0, 3, 1], "v": {"op": "put", "key": "k"}},
    {"app": "an application record between them"},
    {"px": "d", "s": 1},
    {"px": "d", "s": 2, "v": "two"},
    {"px": "e", "th": 3, "n": 12345, "es": 3},
    {"px": "p", "s": 4, "b": [3, 1, 2]},
    {"px": "m", "m": 1, "dn": {"1": 0, "2": 0}},
    {"px": "r"},
    {"px": "f", "f": 3},
]


class Unreachable:
    async def call(self, peer: int, method: str, args: dict[str, Any], *, deadline_s: float) -> Any:
        await trio.lowlevel.checkpoint()
        raise PaxosUnreachable("nobody else in this test")


def _write_old_journal(directory: Path) -> None:
    with journal_pkg.Journal.open(directory) as opened:
        storage = ServerStorage(opened)

        async def write() -> None:
            await storage.snapshot({"paxos": OLD_SNAPSHOT, "applied": 0})
            for record in OLD_RECORDS:
                if "px" in record:
                    opened.append(cbor2.dumps({"px": record}))  # the old ServerStorage.append
                else:
                    opened.append(cbor2.dumps(record))
            await storage.sync()

        trio.run(write)


def test_a_journal_written_before_typed_records_replays(tmp_path: Path) -> None:
    """The server's restore path reads the old journal; the restarted peer holds its
    decisions, promises, epoch and floor, and answers as the old peer would have."""
    directory = tmp_path / "old"
    _write_old_journal(directory)
    with journal_pkg.Journal.open(directory) as opened:
        storage = ServerStorage(opened)
        restored = restore_paxos(storage)
        assert restored == restore_state(OLD_SNAPSHOT, OLD_RECORDS)

        async def check() -> None:
            peer = PaxosPeer(
                peer_count=3, me=0, storage=storage, transport=Unreachable(), restored=restored
            )
            assert peer.status(0) == (Fate.DECIDED, "zero")
            assert peer.status(1) == (Fate.DECIDED, {"op": "put", "key": "k"})
            assert peer.status(2) == (Fate.DECIDED, "two")
            assert peer.status(4) == (Fate.PENDING, None)
            stats = peer.statistics()
            assert (stats["max"], stats["min"], stats["epoch"], stats["floor"]) == (4, 0, 3, 3)
            assert stats["epoch_threshold"] == 3 and not stats["recovering"]
            assert peer.is_voting
            # New records go after the old ones in the same journal, in the same layout.
            peer.done(0)
            await storage.sync()

        trio.run(check)
    with journal_pkg.Journal.open(directory) as opened:
        storage = ServerStorage(opened)
        records = list(storage.paxos_records())
        assert records[: len(OLD_RECORDS) - 1] == [r for r in OLD_RECORDS if "px" in r]
        assert restore_paxos(storage).instances[4].promised == Ballot(3, 1, 2)
