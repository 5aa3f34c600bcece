"""`diskv-journal dump` on a server's journal: Paxos records by kind and field name, a kind
filter, and a snapshot's keys.

Builds a journal the way a replica writes one (``{"px": record.to_wire()}`` records and a
snapshot holding a shardkv state machine) and checks that the dump names kinds and fields,
never the one-letter wire keys, that ``--kind`` keeps only the kinds asked for, and that
``--snapshot`` lists every key of every shard with its value's size.
"""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest

from diskv_trio.kvproto import COURSE_SHARDING
from diskv_trio.paxos import AcceptRecord, Ballot, DecideRecord, MinRecord, PromiseRecord
from diskv_trio.shardkv import ShardKVState
from diskv_trio.shardmaster import Config
from journal import Journal
from tools.diskv_journal.cli import main

ENTRY = {"ops": [{"op": "put", "key": b"greeting", "value": b"hello", "client": "c1", "seq": 1}]}


def _server_journal(path: Path) -> Path:
    state = ShardKVState(100)
    state.apply({"op": "reconfig", "config": Config(1, (100,) * 10, {100: ("unix:/a",)}).to_wire()})
    assert state.apply(ENTRY["ops"][0])["err"] == "OK"
    snapshot = {"v": 1, "paxos": {}, "applied": 2, "machine": state.snapshot()}
    records = [
        PromiseRecord(3, Ballot(0, 1, 2)),
        AcceptRecord(3, Ballot(0, 1, 2), ENTRY),
        DecideRecord(3, None, carries_value=False),
        MinRecord(2, ((1, 1), (2, 0))),
    ]
    with Journal.open(path) as journal:
        journal.append(cbor2.dumps({"px": PromiseRecord(1, Ballot(0, 0, 1)).to_wire()}))
        journal.snapshot(cbor2.dumps(snapshot), 1)
        journal.append(cbor2.dumps({"app": "not paxos"}))
        for record in records:
            journal.append(cbor2.dumps({"px": record.to_wire()}))
        journal.sync()
    return path


def test_dump_names_kinds_and_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _server_journal(tmp_path / "j")
    assert main(["dump", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == ["other", "promise", "accept", "decide", "min"]
    assert "seq=3 ballot='0.1.2'" in lines[1]
    assert "value='(the accepted one)'" in lines[3]
    assert "min=2 dones={'1': 1, '2': 0}" in lines[4]
    assert not any("'px'" in line or " s=" in line for line in lines)


def test_dump_filters_by_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _server_journal(tmp_path / "j")
    assert main(["dump", str(path), "--json", "--kind", "accept", "--kind", "decide"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["kind"] for row in rows] == ["accept", "decide"]
    assert rows[0]["fields"]["ballot"] == "0.1.2"
    assert rows[0]["fields"]["value"]["ops"][0]["value"] == {"hex": b"hello".hex(), "len": 5}
    assert main(["dump", str(path), "--kind", "nonsense"]) == 3


def test_dump_shows_a_snapshots_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _server_journal(tmp_path / "j")
    assert main(["dump", str(path), "--snapshot", "--json", "--kind", "floor"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    snapshot = json.loads(line)["snapshot"]
    assert snapshot["lsn"] == 1 and snapshot["applied"] == 2
    assert snapshot["sections"] == ["applied", "machine", "paxos"]
    shard = COURSE_SHARDING.shard_of(b"greeting")
    assert snapshot["keys"] == [
        {"where": f"shard {shard}", "key": {"hex": b"greeting".hex(), "len": 8}, "value_bytes": 5}
    ]
    assert main(["dump", str(path), "--snapshot", "--kind", "floor"]) == 0
    out = capsys.readouterr().out
    assert "keys=1" in out and "b'greeting'  5 bytes" in out
