"""The package exports exactly its public names, and they all exist."""

from __future__ import annotations

import journal


def test_all_names_exist_and_are_public() -> None:
    for name in journal.__all__:
        assert hasattr(journal, name), name
    assert not [n for n in journal.__all__ if n.startswith("_")]


def test_no_public_name_is_left_out() -> None:
    public = {n for n in vars(journal) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(journal.__all__)


def test_journal_imports_nothing_from_diskv_trio() -> None:
    import sys

    assert "journal" in sys.modules
    for name in journal.__all__:
        module = getattr(getattr(journal, name), "__module__", "journal") or "journal"
        assert not module.startswith("diskv_trio"), name
