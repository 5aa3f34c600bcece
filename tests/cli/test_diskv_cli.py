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
        (["get", "k", "--timeout", "-1"], "positive, finite"),
        (["get", "k", "--timeout", "nan"], "positive, finite"),
        (["admin", "query", "--timeout", "inf"], "positive, finite"),
        (["status", "--timeout", "0"], "positive, finite"),
        (["get", "k", "--log-level", "loud"], "invalid choice"),
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


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("diskv ")


def _fake_handler(monkeypatch: pytest.MonkeyPatch, raised: BaseException) -> None:
    """Make `diskv get` raise `raised` from inside its handler, as a Trio nursery would."""
    from diskv_trio.cli import _client_cmds

    def handler(args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr(_client_cmds, "run_kv", handler)


@pytest.mark.parametrize(
    "raised",
    [KeyboardInterrupt(), BaseExceptionGroup("nursery", [KeyboardInterrupt()]),
     BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [KeyboardInterrupt()])])],
    ids=["plain", "group", "nested"],
)
def test_ctrl_c_exits_130_quietly(
    raised: BaseException, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_handler(monkeypatch, raised)
    assert main(["get", "k", "--masters", "unix:/tmp/nowhere.sock"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_an_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISKV_TRACEBACK", raising=False)
    _fake_handler(monkeypatch, ExceptionGroup("nursery", [RuntimeError("boom")]))
    assert main(["get", "k", "--masters", "unix:/tmp/nowhere.sock"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("diskv: unexpected error: RuntimeError: boom")
    assert len(err.splitlines()) == 1


def test_a_command_error_inside_a_group_is_its_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from diskv_trio.cli._common import CommandError

    _fake_handler(monkeypatch, ExceptionGroup("nursery", [CommandError("no such server", 1)]))
    assert main(["get", "k", "--masters", "unix:/tmp/nowhere.sock"]) == 1
    assert capsys.readouterr().err == "diskv: no such server\n"


def test_a_wait_that_cannot_succeed_explains_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No shardmaster is up: after 3 s the command says so, and its timeout line repeats it."""
    monkeypatch.delenv("DISKV_CREDENTIALS", raising=False)
    assert main(["get", "k", "--masters", "unix:/tmp/nowhere.sock", "--timeout", "3.5"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("diskv: get: still waiting after 3 s: ")
    assert "unix:/tmp/nowhere.sock" in err[0]
    assert err[-1].startswith("diskv: get did not complete within 3.5 s: ")
    assert "Traceback" not in "\n".join(err)


def test_dir_and_its_environment_variable_find_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--dir` and `DISKV_DIR` name where `cluster.json` is; the error names the path used."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISKV_MASTERS", raising=False)
    monkeypatch.setenv("DISKV_DIR", str(tmp_path / "from-env"))
    assert main(["get", "k"]) == 1
    assert str(tmp_path / "from-env" / "cluster.json") in capsys.readouterr().err
    assert main(["status", "--dir", str(tmp_path / "from-flag")]) == 1
    assert str(tmp_path / "from-flag" / "cluster.json") in capsys.readouterr().err


def test_json_log_lines(tmp_path: Path) -> None:
    import json
    import logging

    from diskv_trio._logging import configure_logging

    log_file = tmp_path / "server.log"
    configure_logging("debug", "json", log_file=log_file)
    try:
        logging.getLogger("diskv.test").info("hello %s", "there")
    finally:
        configure_logging("warning", "text")
    entry = json.loads(log_file.read_text().splitlines()[-1])
    assert entry["message"] == "hello there"
    assert entry["level"] == "info" and entry["logger"] == "diskv.test"
