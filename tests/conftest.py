"""Fixtures shared by every test area."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp directory under /tmp with a short path, so Unix socket paths fit in 107 bytes.

    Set DISKV_KEEP_TEST_DIRS=1 to keep it (server logs included) for a post-mortem.
    """
    path = Path(tempfile.mkdtemp(prefix="dkv-", dir="/tmp"))
    try:
        yield path
    finally:
        if os.environ.get("DISKV_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(path, ignore_errors=True)
