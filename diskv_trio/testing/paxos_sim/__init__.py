"""Deterministic simulations of a Paxos group, for the Paxos tests.

One seed fixes a whole run: clock, network (loss, duplication, delay, partitions), disks
(unsynced records lost in a crash) and faults (crashes, disk losses). `Simulation` runs the
classic protocol, `LeaderSimulation` the stable leader with its reads; both also run
scripted schedules (`manual=True`) in which the test moves each message itself. A core
assembled from other parts (`diskv_trio.paxos._parts.CoreParts`) runs the same way, which
is how the tests show that every rule they break on purpose is caught. The leader
simulation also records its writes and reads as a client history (`ClientHistory`) and
judges it with the project's linearizability checker at the end of every run.
"""

from ._history import ClientHistory, HistoryCheck
from ._leader import NOOP, LeaderSimulation, ReadCheck
from ._network import SimNetwork
from ._simulation import Simulation
from ._world import (
    TICK_S,
    Packet,
    PacketFilter,
    SimDisk,
    SimParams,
    SimPeer,
    SimulationFailure,
    random_params,
    replay_command,
)

__all__ = [
    "NOOP",
    "TICK_S",
    "ClientHistory",
    "HistoryCheck",
    "LeaderSimulation",
    "Packet",
    "PacketFilter",
    "ReadCheck",
    "SimDisk",
    "SimNetwork",
    "SimParams",
    "SimPeer",
    "Simulation",
    "SimulationFailure",
    "random_params",
    "replay_command",
]
