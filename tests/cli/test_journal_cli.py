"""diskv-journal, called in-process: every subcommand, every exit code, every error line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import cast

import cbor2
import pytest

import journal
from journal import FORCED_REPAIR_MARKER, Journal, is_force_repaired
from tools.diskv_journal import cli as journal_cli
from tools.diskv_journal.cli import main

SUBCOMMANDS = ["inspect", "verify", "dump", "repair"]


def _make(path: Path, payloads: list[bytes], *, snapshot_at: int | None = None) -> Path:
    with Journal.open(path) as j:
        for index, payload in enumerate(payloads, start=1):
            j.append(payload)
            if index == snapshot_at:
                j.snapshot(b"state", index)
        j.sync()
    return path


def _segment(path: Path) -> Path:
    return sorted(path.glob("*.log"))[-1]


def _records(count: int) -> list[bytes]:
    return [
        cbor2.dumps({"op": "put", "key": f"k{i}", "value": bytes([i]) * 40}) for i in range(count)
    ]


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return _make(tmp_path / "clean", _records(6))


@pytest.fixture
def torn(tmp_path: Path) -> Path:
    path = _make(tmp_path / "torn", _records(6))
    with open(_segment(path), "ab") as file:
        file.write(b"\x00\x00\x01\x00\xde\xad")
    return path


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = _make(tmp_path / "corrupt", _records(6))
    data = bytearray(_segment(path).read_bytes())
    data[20] ^= 0x40  # inside the first record's payload
    _segment(path).write_bytes(bytes(data))
    return path


def _snapshot_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir()}


def test_inspect_clean(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "0000000000000001.log" in out
    assert "6 records, lsn 1..6" in out
    assert out.rstrip().endswith("verdict: clean")


def test_inspect_shows_snapshot_and_covered_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _make(tmp_path / "j", _records(5), snapshot_at=3)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "snapshot snap-0000000000000003.cbor  lsn 3" in out
    assert "snapshot lsn 3, last lsn 5" in out


def test_inspect_progress_bar_on_a_terminal(
    clean: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    real_scan = journal_cli.scan

    def spying_scan(path: str, *, progress: object = None) -> journal.ScanReport:
        def spy(done: int, total: int) -> None:
            calls.append((done, total))
            progress(done, total)  # type: ignore[operator]

        return real_scan(path, progress=spy if progress else None)

    monkeypatch.setattr(journal_cli, "PROGRESS_BYTES_MIN", 1)
    monkeypatch.setattr(journal_cli.sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(journal_cli, "scan", spying_scan)
    assert main(["inspect", str(clean)]) == 0
    assert calls and calls[-1][0] == calls[-1][1] == os.path.getsize(_segment(clean))
    assert "verdict: clean" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fixture", "code", "word"),
    [("clean", 0, "clean"), ("torn", 1, "torn tail"), ("corrupt", 2, "corrupt")],
)
def test_verify_exit_codes(
    fixture: str,
    code: int,
    word: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = request.getfixturevalue(fixture)
    before = _snapshot_files(path)
    assert main(["verify", str(path)]) == code
    assert word in capsys.readouterr().out
    assert _snapshot_files(path) == before  # verify never changes anything


def test_verify_and_inspect_report_a_torn_tail_where_it_is(
    torn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(torn)]) == 1
    out = capsys.readouterr().out
    assert "torn tail at 0000000000000001.log" in out
    assert "(lsn 7)" in out


def test_dump_text(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dump", str(clean), "--from", "2", "--to", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["lsn=2", "lsn=3"]
    assert "type=data" in lines[0]
    assert "'k1'" in lines[0] and "(40)" in lines[0]


def test_dump_json_decodes_cbor_and_shows_bytes_as_hex(
    clean: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dump", str(clean), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["lsn"] for row in rows] == [1, 2, 3, 4, 5, 6]
    value = rows[2]["cbor"]["value"]
    assert value["len"] == 40
    assert value["hex"].startswith("02" * 16)
    assert rows[2]["cbor"]["key"] == "k2"


def test_dump_shows_undecodable_payload_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _make(tmp_path / "j", [b"\xff\xfe not cbor"])
    assert main(["dump", str(path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["raw"]["hex"] == b"\xff\xfe not cbor".hex()


def test_dump_stops_at_damage_and_says_so(
    corrupt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dump", str(corrupt)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("diskv-journal: stopped: corrupt")


def test_repair_torn_tail(torn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = _segment(torn).read_bytes()
    assert main(["repair", str(torn)]) == 0
    out = capsys.readouterr().out
    assert "copy 0000000000000001.log to 0000000000000001.log.broken" in out
    assert (torn / "0000000000000001.log.broken").read_bytes() == damaged
    assert main(["verify", str(torn)]) == 0
    assert not is_force_repaired(torn)
    with Journal.open(torn) as j:
        assert j.last_lsn == 6


def test_repair_dry_run_changes_nothing(torn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot_files(torn)
    assert main(["repair", "--dry-run", str(torn)]) == 0
    assert "would truncate 0000000000000001.log" in capsys.readouterr().out
    assert _snapshot_files(torn) == before


def test_repair_clean_does_nothing(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot_files(clean)
    assert main(["repair", str(clean)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert _snapshot_files(clean) == before


def test_repair_refuses_corruption_without_force(
    corrupt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot_files(corrupt)
    assert main(["repair", str(corrupt)]) == 2
    assert "--force" in capsys.readouterr().err
    assert _snapshot_files(corrupt) == before


def test_repair_force_cuts_back_and_marks(
    corrupt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _segment(corrupt).read_bytes()
    assert main(["repair", "--force", "--dry-run", str(corrupt)]) == 0
    assert not is_force_repaired(corrupt)
    assert main(["repair", "--force", str(corrupt)]) == 0
    out = capsys.readouterr().out
    assert FORCED_REPAIR_MARKER in out
    assert is_force_repaired(corrupt)
    assert (corrupt / "0000000000000001.log.broken").read_bytes() == damaged
    assert main(["verify", str(corrupt)]) == 0
    with Journal.open(corrupt) as j:  # the first record was the damaged one: nothing is left
        assert j.last_lsn == 0
    journal.clear_force_repaired(corrupt)
    assert not is_force_repaired(corrupt)


def test_repair_force_moves_later_segments_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j"
    with Journal.open(path, segment_bytes_max=1) as j:
        for payload in _records(3):
            j.append(payload)
            j.sync()  # one record per segment
    first = path / "0000000000000001.log"
    data = bytearray(first.read_bytes())
    data[-1] ^= 1
    first.write_bytes(bytes(data))
    assert main(["repair", "--force", str(path)]) == 0
    names = sorted(p.name for p in path.iterdir())
    assert "0000000000000002.log.broken" in names and "0000000000000003.log.broken" in names
    assert main(["verify", str(path)]) == 0
    assert is_force_repaired(path)


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("diskv-journal: no such directory")
    assert err.count("\n") == 1


def test_a_file_is_not_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["verify", str(tmp_path / "f")]) == 3
    assert capsys.readouterr().err.startswith("diskv-journal: not a journal directory")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_a_directory_of_other_files_is_not_a_journal(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert main([command, str(tmp_path)]) == 3
    assert capsys.readouterr().err.startswith("diskv-journal: not a journal directory")


def test_empty_directory_is_an_empty_clean_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path)]) == 0
    assert "clean" in capsys.readouterr().out


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_permission_denied(
    command: str, clean: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object, path: str) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(journal.RealFileSystem, "read_file", refuse)
    assert main([command, str(clean)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("diskv-journal: permission denied:")
    assert "Traceback" not in err


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate", "x"]) == 3
    assert capsys.readouterr().err.startswith("diskv-journal: ")
    assert main(["dump", "x", "--from", "abc"]) == 3
    assert main([]) == 3


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: diskv-journal {command}" in out
    assert "exit status" in out
    action = next(a for a in journal_cli.build_parser()._actions if a.dest == "command")
    choices = cast(dict[str, argparse.ArgumentParser], action.choices)
    assert choices[command].description


def test_top_level_help_lists_subcommands_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out
    assert "0 clean, 1 torn tail, 2 corrupt, 3 error" in out
    assert "3  error" in (journal_cli.__doc__ or "")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("diskv-journal ")


def test_inspect_and_verify_json(
    clean: Path, torn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json` carries the verdict and the exit status the command returns."""
    assert main(["inspect", str(clean), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "clean" and report["exit_status"] == 0
    assert report["record_count"] > 0 and report["segments"]
    assert main(["verify", str(torn), "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "torn-tail" and verdict["exit_status"] == 1
