"""The random part of a simulation run: the faults of the fault phase, then the healing and
the liveness check (DESIGN.md section 8: a safety phase, then a healed majority must converge
within a bound).

Rules kept here:
- Every random choice comes from the simulation's one seeded `rng`, in a fixed order.
- At most as many peers lack their knowledge (lost disk, not yet caught up) as a majority
  can spare: losing more would be losing a majority's votes, which no protocol survives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diskv_trio.paxos import Fate

from ._world import SimulationFailure

if TYPE_CHECKING:
    from ._simulation import Simulation


def heal_and_check_liveness(sim: Simulation) -> None:
    """Heal everything, restart every peer, and require recovery and agreement in time.

    Every recovering peer must vote again and learn up to its floor. Then, for half the
    seeds, one peer is stopped for good: the rest (a majority of intact peers) must
    still decide every instance ever started.
    """
    sim.params.loss = 0.0
    sim.params.duplicate = 0.0
    sim.net.groups = None
    for packet in sim.packets():
        packet.held = False
    for peer in sim.peers:
        if not peer.alive:
            sim.bring_up(peer.index)
    deadline = sim.tick_count + sim.params.liveness_ticks_max
    while not all(p.core.voting for p in sim.peers):
        if sim.tick_count >= deadline:
            raise SimulationFailure(
                "recovering peers did not become voting after healing: "
                + str([p.core.statistics() for p in sim.peers])
            )
        sim.step()
    while not all(sim._caught_up(p) for p in sim.peers):
        if (deadline - sim.tick_count) % 100 == 0:  # the application retries
            for peer in sim.peers:
                sim._app_catch_up(peer)
        if sim.tick_count >= deadline:
            raise SimulationFailure(
                "recovered peers did not learn up to their floor after healing: "
                + str([p.core.statistics() for p in sim.peers])
            )
        sim.step()
    if sim.rng.random() < 0.5:
        sim.crash(sim.rng.randrange(len(sim.peers)))  # and it stays down
    live = [peer for peer in sim.peers if peer.alive]
    top = max([*sim.started, *sim.decisions, -1])
    for peer in live:
        for seq in range(peer.core.min(), top + 1):
            sim.start(peer.index, seq, ["noop", peer.index])
    while True:
        missing = [
            (peer.index, seq)
            for peer in live
            for seq in range(peer.core.min(), top + 1)
            if peer.core.status(seq)[0] is Fate.PENDING
        ]
        if not missing:
            return
        if sim.tick_count >= deadline:
            raise SimulationFailure(
                f"not decided {sim.params.liveness_ticks_max} ticks after healing: "
                f"(peer, seq) {missing[:10]}; {[p.core.statistics() for p in sim.peers]}"
            )
        sim.step()


def random_events(sim: Simulation) -> None:
    rng = sim.rng
    p = sim.params
    n = p.peer_count
    alive = [peer.index for peer in sim.peers if peer.alive]
    if alive and rng.random() < p.start_rate:
        top = max([*sim.started, -1])
        seq = rng.randint(max(0, top - 5), top + 3)
        index = rng.choice(alive)
        sim.start(index, seq, [index, seq, rng.randint(0, 9)])
    if alive and rng.random() < p.done_rate:
        index = rng.choice(alive)
        core = sim.peers[index].core
        decided = [
            s for s in range(core.min(), core.max() + 1) if core.status(s)[0] is Fate.DECIDED
        ]
        if decided:
            sim.done(index, rng.choice(decided))
    if alive and rng.random() < p.snapshot_rate:
        sim.snapshot(rng.choice(alive))
    if alive and rng.random() < p.crash_rate:
        sim.crash(rng.choice(alive), restart_after=rng.randint(1, p.down_ticks_max))
    if alive and rng.random() < p.wipe_rate:
        index = rng.choice(alive)
        # Losing more disks than this would be losing a majority's knowledge: a peer
        # counts as lacking until it is voting and has learned every instance <= floor.
        lacking = sum(1 for peer in sim.peers if peer.index != index and not sim._caught_up(peer))
        if lacking + 1 <= n - (n // 2 + 1):
            sim.wipe(index, restart_after=rng.randint(1, p.down_ticks_max))
    if rng.random() < p.partition_rate:
        sim.net.groups = [rng.randrange(3) for _ in range(n)]
    elif sim.net.groups is not None and rng.random() < p.heal_rate:
        sim.net.groups = None
