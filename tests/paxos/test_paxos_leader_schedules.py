"""The five schedules of shared/spec/leader-schedules.md as scripted leader simulations.

Each schedule broke one rule of DESIGN.md section 4 as first written. Each runs twice on a
manual `LeaderSimulation` (nothing random, no timer fires, only the listed messages are
delivered): with the rule broken on purpose (`broken_rules.py`) the agreement or read
checker must fail, with the rule as written the same steps must pass. Directives follow
the spec's notation: `elect p`, `dlv K a->b` (P range prepare, p its answer, A accept,
a its answer, H heartbeat, h its answer, F fence, k its answer), `prop p`, `hb p`,
`read p`, `crash p` (loses its disk and boots recovering, which starts its fence), `fnew p`
(nothing more to do: booting started the fence). A delivery that finds no such message
(the fixed rule refused earlier) does nothing.
"""

from __future__ import annotations

import math

import pytest
from broken_rules import BROKEN

from diskv_trio.paxos._parts import DEFAULT_PARTS, CoreParts
from diskv_trio.testing.paxos_sim import LeaderSimulation, Packet, SimParams, SimulationFailure

START_TICK = 1000  # every boot wait is over when the script starts
LEASE_S = 0.2

REQUESTS = {"P": "range_prepare", "A": "leader_accept", "H": "heartbeat", "F": "fence"}
ANSWERS = {"p": "range_prepare", "a": "leader_accept", "h": "heartbeat", "k": "fence"}

SCHEDULES: dict[str, tuple[str, bool, str]] = {
    # name: (broken variant, leases on, steps)
    "piggy-back-as-written": (
        "chosen-is-commit-index",
        False,
        """elect 0; dlv P 0->0; dlv P 0->1; dlv p 0->0; dlv p 1->0; prop 0; dlv A 0->2;
        elect 1; dlv P 1->0; dlv P 1->1; dlv p 0->1; dlv p 1->1; prop 1; dlv A 1->0;
        dlv A 1->1; dlv a 0->1; dlv a 1->1; hb 1; dlv H 1->0; hb 0; dlv H 0->2""",
    ),
    "readindex-counts-itself-unchecked": (
        "counts-itself-unchecked",
        False,
        """elect 2; dlv P 2->1; dlv P 2->2; dlv P 2->0; dlv p 1->2; dlv p 2->2; elect 0;
        dlv P 0->0; dlv P 0->2; dlv p 0->0; dlv p 2->0; prop 0; dlv A 0->0; dlv A 0->2;
        dlv a 0->0; dlv a 2->0; read 2; dlv H 2->1; dlv h 1->2""",
    ),
    "lease-own-acceptor-not-honouring": (
        "lease-own-grant-not-honoured",
        True,
        """elect 2; dlv P 2->0; dlv P 2->2; dlv p 0->2; dlv p 2->2; read 2; dlv H 2->1;
        dlv h 1->2; prop 2; dlv A 2->0; elect 0; dlv P 0->0; dlv P 0->2; dlv p 0->0;
        dlv p 2->0; dlv A 0->1; dlv a 1->0; dlv A 0->0; dlv a 0->0; read 2""",
    ),
    "takeover-read-as-written": (
        "read-index-below-takeover",
        False,
        """elect 0; dlv P 0->0; dlv P 0->1; dlv p 0->0; dlv p 1->0; prop 0; dlv A 0->0;
        dlv A 0->1; dlv a 0->0; dlv a 1->0; elect 2; dlv P 2->1; dlv P 2->2;
        dlv p 1->2; dlv p 2->2; read 2; dlv H 2->1; dlv h 1->2""",
    ),
    "lease-no-boot-wait": (
        "lease-no-boot-wait",
        True,
        """elect 0; dlv P 0->0; dlv P 0->1; dlv p 0->0; dlv p 1->0; hb 0; dlv H 0->1;
        dlv h 1->0; crash 1; fnew 1; dlv F 1->0; dlv F 1->2; dlv k 0->1; dlv k 2->1;
        elect 2; dlv F 2->0; dlv F 2->1; dlv k 0->2; dlv k 1->2; dlv P 2->1; dlv P 2->2;
        dlv p 1->2; dlv p 2->2; prop 2; dlv A 2->1; dlv A 2->2; dlv a 1->2; dlv a 2->2;
        read 0""",
    ),
}


def _packets(kind: str, src: int, dst: int):
    def match(packet: Packet) -> bool:
        if kind in REQUESTS:
            return (
                packet.reply is None
                and packet.kind == REQUESTS[kind]
                and (
                    packet.src,
                    packet.dst,
                )
                == (src, dst)
            )
        return (
            packet.reply is not None
            and packet.envelope.msg.KIND == ANSWERS[kind]
            and (packet.src, packet.dst) == (src, dst)
        )

    return match


def run_schedule(
    steps: str, parts: CoreParts, lease: bool, *, stale_read_check: bool = True
) -> LeaderSimulation:
    """Run `steps` on a manual 3-peer leader simulation, then check its client history;
    checkers raise SimulationFailure."""
    sim = LeaderSimulation(
        0,
        SimParams(peer_count=3),
        manual=True,
        lease_s=LEASE_S if lease else None,
        parts=parts,
        stale_read_check=stale_read_check,
    )
    sim.tick_count = START_TICK  # the clock moved on, nothing happened: boot waits are over
    values = 0
    for step in (s.split() for s in steps.replace("\n", " ").split(";")):
        verb, args = step[0], step[1:]
        if verb == "elect":
            sim.peers[int(args[0])].core.fencer.not_before = -math.inf  # no fence deferral
            sim.campaign(int(args[0]))
        elif verb == "dlv":
            src, dst = (int(x) for x in args[1].split("->"))
            sim.deliver(_packets(args[0], src, dst))
        elif verb == "prop":
            values += 1
            sim.propose(int(args[0]), f"v{values}")
        elif verb == "hb":
            sim.heartbeat(int(args[0]))
        elif verb == "read":
            sim.read(int(args[0]))
        elif verb == "crash":
            sim.wipe(int(args[0]))
        else:
            assert verb == "fnew", verb
    sim.check_history()
    return sim


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_is_caught_with_its_rule_broken(name: str) -> None:
    """The broken variant reaches the violation the spec shows (stale read or disagreement)."""
    broken, lease, steps = SCHEDULES[name]
    with pytest.raises(SimulationFailure, match="stale read|agreement violated"):
        run_schedule(steps, BROKEN[broken], lease)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_passes_with_the_rule_kept(name: str) -> None:
    """The same steps with the rules of DESIGN.md: no checker fails."""
    _, lease, steps = SCHEDULES[name]
    sim = run_schedule(steps, DEFAULT_PARTS, lease)
    assert sim.reads or sim.decisions  # the schedule did something
