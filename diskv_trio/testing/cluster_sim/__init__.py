"""The whole cluster in one deterministic simulation (FoundationDB's approach).

The real Trio code of the shardmasters, the shardkv replica nodes and the client runs in one
process, on a simulated network (`SimNetwork`: delay, loss, duplication, reordering,
partitions) and simulated disks (`SimDisk`: unsynced writes lost in a crash, disks lost),
under `trio.testing.MockClock` with autojump, so a minute of cluster time costs seconds and a
seed replays the same run, event for event (`SimResult.digest`). It reaches the servers only
through the seams they have anyway: a `diskv_trio.net.Transport`, a `diskv_trio.rsm.Disk`,
Trio's clock and `diskv_trio._entropy`.

Run many seeds: ``python -m diskv_trio.testing.cluster_sim --seeds N [--seed S] [--seconds T]``;
`run_scenario` drives the same cluster from a script instead of a seed.
"""

from ._agreement import AgreementCheck
from ._checks import wait_until
from ._cluster import ServerSpec, SimCluster, SimServer, layout
from ._disk import SimDisk
from ._network import HEALTHY, HostTransport, LinkFaults, SimNetwork
from ._params import FAULT_KINDS, SECONDS_DEFAULT, SimParams
from ._run import Hooks, SimResult, run_simulation
from ._scenario import Scenario, ScenarioResult, run_scenario
from ._trace import Trace

__all__ = [
    "FAULT_KINDS",
    "HEALTHY",
    "SECONDS_DEFAULT",
    "AgreementCheck",
    "Hooks",
    "Scenario",
    "ScenarioResult",
    "HostTransport",
    "LinkFaults",
    "ServerSpec",
    "SimCluster",
    "SimDisk",
    "SimNetwork",
    "SimParams",
    "SimResult",
    "SimServer",
    "Trace",
    "layout",
    "run_scenario",
    "run_simulation",
    "wait_until",
]
