"""The package's public names are exactly `__all__`, each one exists, and the package stays
sans-network and sans-journal: its modules import neither `diskv_trio.net` nor `journal`
(checked on the source, so a lazy import inside a function is caught too)."""

from __future__ import annotations

import ast
from pathlib import Path

import diskv_trio.paxos as paxos

PACKAGE = Path(paxos.__file__).resolve().parent


def test_all_names_exist_and_are_public() -> None:
    for name in paxos.__all__:
        assert hasattr(paxos, name), name
        assert not name.startswith("_")
    assert len(set(paxos.__all__)) == len(paxos.__all__)


def test_public_api_is_exported() -> None:
    expected = {
        "Fate",
        "PaxosPeer",
        "PaxosStorage",
        "PaxosTransport",
        "PaxosRestoredState",
        "PaxosForgotten",
        "PaxosUnreachable",
        "PaxosRecord",
        "MemoryStorage",
        "restore_state",
    }
    assert expected <= set(paxos.__all__)
    assert [f.value for f in paxos.Fate] == [1, 2, 3]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_paxos_imports_neither_the_network_nor_the_journal() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) > 5
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")
            assert top[0] != "journal", f"{path.name} imports {name}"
            assert top[:2] != ["diskv_trio", "net"], f"{path.name} imports {name}"
            assert top[:2] != ["diskv_trio", "rsm"], f"{path.name} imports {name}"
