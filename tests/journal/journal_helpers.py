"""Helpers for the journal tests: build small journals and read them back."""

from __future__ import annotations

import os
from pathlib import Path

from journal import FileSystem, Journal


def write_journal(path: str | Path, payloads: list[bytes], *, fs: FileSystem | None = None) -> None:
    """Create a journal holding payloads as LSNs 1..n, synced, in one segment."""
    with Journal.open(path, fs=fs) as journal:
        for payload in payloads:
            journal.append(payload)
        journal.sync()


def read_back(path: str | Path, *, fs: FileSystem | None = None) -> list[tuple[int, bytes]]:
    with Journal.open(path, fs=fs) as journal:
        return list(journal)


def only_segment(path: str | Path) -> str:
    names = [n for n in os.listdir(path) if n.endswith(".log")]
    assert len(names) == 1
    return os.path.join(path, names[0])
