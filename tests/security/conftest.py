"""Fixtures for the hostile-client tests: one real local cluster per module."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.security.harness import SharedCluster, shared_cluster_dir


@pytest.fixture(scope="module")
def shared() -> Iterator[SharedCluster]:
    """A running cluster for every test of the module; all its processes stop at the end.

    Set DISKV_KEEP_TEST_DIRS=1 to keep its directory (server logs included).
    """
    path = shared_cluster_dir()
    cluster = SharedCluster(path / "c")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if os.environ.get("DISKV_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(path, ignore_errors=True)
