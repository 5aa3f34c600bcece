"""Seeded simulation of Paxos groups: agreement always, liveness once a majority is healed.

Each seed draws its own parameters (3 or 5 peers, loss, duplication, delay, crash, disk-loss
and partition rates; see `random_params`), runs a fault phase, then heals and requires every
recovering peer to vote again and every started instance to be decided everywhere within a
bound. A failing seed prints its parameters; replay it with
`pytest tests/paxos/test_paxos_simulation.py --paxos-seed SEED` (or PAXOS_SEED=SEED).

The named scenario shows why a peer that lost its disk must fence: an old proposer's accept
is still in flight when the peer comes back; with the fence agreement holds, and with the
naive "vote again once one new instance is decided" rule it breaks.
"""

from __future__ import annotations

import os
import random

import pytest
from broken_rules import NAIVE_REJOIN

from diskv_trio.paxos import Fate
from diskv_trio.paxos._parts import DEFAULT_PARTS
from diskv_trio.testing.paxos_sim import Packet, SimParams, Simulation, SimulationFailure

SEEDS_DEFAULT = 120


def _seeds(config: pytest.Config) -> list[int]:
    chosen = list(config.getoption("--paxos-seed", default=[]) or [])
    if os.environ.get("PAXOS_SEED"):
        chosen.append(int(os.environ["PAXOS_SEED"]))
    if chosen:
        return chosen
    count = config.getoption("--paxos-seeds", default=None) or int(
        os.environ.get("PAXOS_SEEDS", SEEDS_DEFAULT)
    )
    base = int(os.environ.get("PAXOS_SEED_BASE", "0"))
    return list(range(base, base + count))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" in metafunc.fixturenames:
        metafunc.parametrize("sim_seed", _seeds(metafunc.config))


def test_random_schedules_keep_agreement_and_converge(sim_seed: int) -> None:
    """One seed: faults, then healing; checks agreement throughout and liveness at the end."""
    sim = Simulation(sim_seed)
    print(f"paxos simulation {sim.describe()}")
    sim.run()
    assert sim.decisions, "the schedule decided nothing: the simulation is too weak to test"


def test_same_seed_same_run() -> None:
    """Determinism: a seed fully fixes the run, so a printed seed replays the failure."""
    first = Simulation(7)
    first.run()
    second = Simulation(7)
    second.run()
    assert first.decisions == second.decisions
    assert first.trace == second.trace
    assert first.tick_count == second.tick_count


def _kind(kind: str, *, src: int | None = None, dst: int | None = None):
    def match(packet: Packet) -> bool:
        return (
            packet.kind == kind
            and (src is None or packet.src == src)
            and (dst is None or packet.dst == dst)
        )

    return match


def _disk_loss_with_accept_in_flight(naive_rejoin: bool) -> Simulation:
    """The schedule: 3 peers; instance 1 is decided "A" by {0, 1} while 0's accept to 2 is
    held in the network; peer 1 loses its disk and comes back; instance 2 is decided by
    {0, 2}; then {1, 2} are cut off from 0 and peer 2 proposes "B" for instance 1."""
    parts = NAIVE_REJOIN if naive_rejoin else DEFAULT_PARTS
    sim = Simulation(1, SimParams(peer_count=3), manual=True, parts=parts)
    sim.start(0, 1, "A")
    assert sim.deliver(_kind("prepare")) == 2
    assert sim.deliver(_kind("promise")) == 2
    assert sim.hold(_kind("accept", dst=2)) == 1
    assert sim.deliver(_kind("accept", dst=1)) == 1
    assert sim.deliver(_kind("accepted", src=1)) == 1
    assert sim.peers[0].core.status(1) == (Fate.DECIDED, "A")
    assert sim.drop(_kind("decide")) == 2  # nobody else learns it
    sim.wipe(1)
    sim.start(0, 2, "C")
    sim.settle()
    assert all(p.core.status(2) == (Fate.DECIDED, "C") for p in sim.peers)
    assert sim.peers[2].core.status(1)[0] is Fate.PENDING
    assert len(sim.packets(_kind("accept", dst=2))) == 1  # the old accept is still in flight
    sim.partition([[0], [1, 2]])
    sim.start(2, 1, "B")
    sim.settle()
    return sim


def test_disk_loss_with_old_accept_in_flight_fence_keeps_agreement() -> None:
    """With the fence, peer 1 gets a floor covering instance 1 and does not vote in it, so
    {1, 2} cannot decide "B"; the old accept, delivered late, is refused (stale epoch); after
    healing every peer decides "A"."""
    sim = _disk_loss_with_accept_in_flight(naive_rejoin=False)
    recovered = sim.peers[1].core
    assert recovered.voting
    assert recovered.floor >= 1
    assert sim.peers[2].core.status(1)[0] is Fate.PENDING  # no majority without peer 0
    sim.partition(None)
    sim.deliver(_kind("accept", dst=2))
    assert len(sim.packets(_kind("stale_epoch", src=2, dst=0))) == 1
    sim.settle(2000)
    assert [p.core.status(1) for p in sim.peers] == [(Fate.DECIDED, "A")] * 3
    assert sim.decisions[1] == "A"


def test_disk_loss_naive_rejoin_breaks_agreement() -> None:
    """The same schedule with the naive rule: peer 1 votes again once it learns instance 2,
    promises blank for instance 1, and {1, 2} decide "B" although "A" was decided."""
    with pytest.raises(SimulationFailure, match="agreement violated: instance 1"):
        _disk_loss_with_accept_in_flight(naive_rejoin=True)


def test_recovering_peer_stays_out_without_intact_majority() -> None:
    """A peer that lost its disk never votes while fewer than floor(n/2)+1 other intact
    peers answer (here 2 of 4 others reachable in a group of 5), and votes once they do."""
    sim = Simulation(3, SimParams(peer_count=5), manual=True)
    sim.start(0, 0, "x")
    sim.settle()
    sim.wipe(4)
    sim.partition([[0, 1], [2, 3, 4]])
    sim.crash(3)
    sim.run_ticks(300)
    assert not sim.peers[4].core.voting
    sim.partition(None)
    sim.run_ticks(100)
    assert sim.peers[4].core.voting
    assert sim.peers[4].core.floor >= 0


def test_lost_unsynced_records_do_not_break_agreement() -> None:
    """A busier schedule with only crashes (no disk loss): the unsynced tail of each journal is
    lost at every crash; decisions stay unique and every instance is decided after healing."""
    params = SimParams(peer_count=3, loss=0.1, crash_rate=0.02, wipe_rate=0.0, flush_rate=0.0)
    sim = Simulation(random.Random(11).randrange(1 << 30), params)
    sim.run()
    assert len(sim.decisions) > 20
