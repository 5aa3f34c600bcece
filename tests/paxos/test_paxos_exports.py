"""The package's public names are exactly `__all__`, and each one exists."""

from __future__ import annotations

import diskv_trio.paxos as paxos


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
        "MemoryStorage",
        "open_paxos_node",
        "PaxosNode",
    }
    assert expected <= set(paxos.__all__)
    assert [f.value for f in paxos.Fate] == [1, 2, 3]
