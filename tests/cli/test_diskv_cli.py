"""The `diskv` command line: help for every subcommand, one-line errors, no tracebacks."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from diskv_trio.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(prefix + (name,))
                found.extend(_subcommands(sub, prefix + (name,)))
    return found


SUBCOMMANDS = _subcommands(build_parser())


def test_every_command_is_listed() -> None:
    """The commands DESIGN.md section 7 promises exist."""
    for wanted in [("shardmaster",), ("serve",), ("admin", "join"), ("admin", "leave"), ("admin", "move"),
                   ("admin", "query"), ("get",), ("put",), ("append",), ("cluster", "up"), ("status",), ("demo",)]:
        assert wanted in SUBCOMMANDS


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "usage: diskv" in out
    assert len(out.splitlines()) > 2


def test_readme_documents_every_top_level_command() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for command in {c[0] for c in SUBCOMMANDS}:
        assert f"diskv {command}" in readme, f"README does not mention `diskv {command}`"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "required"),
        (["frobnicate"], "invalid choice"),
        (["serve", "--gid", "1", "--me", "0", "--peers", "unix:/a", "--dir", "d"], "--masters"),
        (["serve", "--gid", "0", "--me", "0", "--peers", "unix:/a", "--dir", "d", "--masters", "unix:/m"], "positive"),
        (["shardmaster", "--me", "x", "--peers", "unix:/a", "--dir", "d"], "integer"),
        (["shardmaster", "--me", "0", "--peers", "unix:/a,,", "--dir", "d"], "addresses"),
        (["shardmaster", "--me", "0", "--peers", "nonsense", "--dir", "d"], "--peers"),
        (["shardmaster", "--me", "3", "--peers", "unix:/a,unix:/b", "--dir", "d"], "out of range"),
        (["admin", "move", "-1", "5"], "non-negative"),
        (["cluster", "up", "--groups", "0"], "positive"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("diskv"), err
    assert len(err.splitlines()) == 1, err
    assert fragment in err
    assert "Traceback" not in err


def test_client_without_masters_names_the_ways_to_give_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISKV_MASTERS", raising=False)
    assert main(["get", "k"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("diskv: no shardmasters given")
    assert "DISKV_MASTERS" in err and "cluster up" in err


def test_server_refuses_a_directory_of_another_server(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from diskv_trio.rsm._identity import ServerIdentity, write_identity

    directory = short_tmp / "d"
    directory.mkdir()
    write_identity(directory, ServerIdentity("diskv", "shardkv", 101, 0))
    status = main(
        ["serve", "--gid", "100", "--me", "0", "--peers", f"unix:{short_tmp}/s.sock",
         "--masters", f"unix:{short_tmp}/m.sock", "--dir", str(directory), "--insecure"]
    )
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "belongs to shardkv group 101" in err
