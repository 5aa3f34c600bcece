"""Fixtures of the network-namespace tests: they skip in one line where namespaces cannot be made."""

from __future__ import annotations

import pytest

from tools.crash._netns import netns_unavailable_reason


@pytest.fixture
def netns_privilege() -> None:
    """Skip (one line, naming why) unless this process can make namespaces, veth pairs and bridges."""
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
