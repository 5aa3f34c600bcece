"""Shared fixtures for the journal tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def payloads() -> list[bytes]:
    return [f"record-{i}".encode() * (i % 3 + 1) for i in range(1, 9)]
