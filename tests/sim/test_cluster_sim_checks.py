"""The simulation's checks bite: each is shown failing a run broken on purpose.

How: a calm run (no faults) is broken through `Hooks`: an acknowledged write is dropped from
the recorded history (linearizability), one replica applies other values than its group
(replica states diverge); the Paxos agreement check is fed real journal writes of two
replicas that decided differently. Each time the unbroken input passes the same check.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import trio
import trio.testing

from diskv_trio.paxos import AcceptRecord, Ballot, DecideRecord
from diskv_trio.rsm import ServerStorage
from diskv_trio.shardkv import ShardKVState
from diskv_trio.testing.cluster_sim import (
    AgreementCheck,
    Hooks,
    SimCluster,
    SimDisk,
    SimParams,
    Trace,
    run_simulation,
)
from diskv_trio.testing.linearizability import Operation, Verdict, check_history
from journal import Journal

SECONDS = 6.0


def calm(seed: int) -> SimParams:
    return dataclasses.replace(SimParams.draw(seed, SECONDS), weights=(), groups=1)


def test_a_lost_acknowledged_write_makes_the_history_illegal() -> None:
    """Dropping one acknowledged append that a later read saw leaves that read unexplained."""
    recorded: list[Operation] = []
    dropped: list[Operation] = []

    def drop_one_write(ops: list[Operation]) -> list[Operation]:
        recorded.extend(ops)
        seen = [op.output for op in ops if op.kind == "get" and isinstance(op.output, str)]
        for op in ops:
            if (
                op.kind == "append"
                and not op.unknown
                and op.value
                and any(op.value in s for s in seen)
            ):
                dropped.append(op)
                return [each for each in ops if each is not op]
        return ops

    result = run_simulation(calm(21), hooks=Hooks(history=drop_one_write))
    assert dropped, "no acknowledged append was read back"
    assert check_history(recorded).verdict is Verdict.OK
    assert [p for p in result.problems if p.startswith("linearizability")], result.problems


def _corrupting_apply(original: Any) -> Any:
    def apply(self: ShardKVState, op: object) -> dict[str, Any]:
        if (
            isinstance(op, dict)
            and op.get("op") in ("put", "append")
            and isinstance(op.get("value"), bytes)
        ):
            op = {**op, "value": op["value"] + b"!"}
        return original(self, op)

    return apply


def test_a_replica_applying_other_values_is_caught() -> None:
    """One replica of group 100 applies every put and append with a changed value: the
    group's replicas reach the same instance with different states."""
    corrupt = type(
        "CorruptState",
        (ShardKVState,),
        {"__slots__": (), "apply": _corrupting_apply(ShardKVState.apply)},
    )

    def break_one_replica(cluster: SimCluster) -> None:
        node = cluster.servers["g100-2"].node
        assert node is not None and node.rsm is not None
        node.rsm.machine.__class__ = corrupt

    result = run_simulation(calm(22), hooks=Hooks(cluster_started=break_one_replica))
    diverged = [p for p in result.problems if p.startswith("replicas diverge: group 100")]
    assert diverged, result.problems
    assert "g100-2" in diverged[0]


def test_the_same_calm_run_passes() -> None:
    result = run_simulation(calm(22))
    assert result.ok, result.problems


async def _journal_writes(disk: SimDisk, records: list[Any]) -> None:
    with Journal.open("/data/replica", fs=disk.fs) as journal:
        storage = ServerStorage(journal, run_sync=disk.run_sync)
        for record in records:
            storage.append(record)
        await storage.sync()


def test_agreement_reads_decisions_from_the_journal_writes() -> None:
    """Replica a accepts v1 and journals "decided, the value I accepted"; replica b journals
    v2 decided for the same instance: a violation naming both. Replica c deciding v1 agrees;
    and a replica that lost its disk no longer speaks for what it had accepted (d accepted
    v9 in instance 6, lost its disk, then learned instance 6 decided as a, with v3)."""
    check = AgreementCheck()
    ballot = Ballot(1, 0, 0)
    taps = {name: check.tap(7, name) for name in "abcd"}

    async def main() -> None:
        trace = Trace()
        disks = {name: SimDisk(name, random.Random(name), trace, taps[name]) for name in "abcd"}
        decided = DecideRecord(5, None, carries_value=False)
        await _journal_writes(disks["a"], [AcceptRecord(5, ballot, "v1"), decided])
        await _journal_writes(disks["c"], [DecideRecord(5, "v1")])
        await _journal_writes(disks["d"], [AcceptRecord(6, ballot, "v9")])
        disks["d"].wipe()
        taps["d"].forget()
        disks["d"].power_on()
        await _journal_writes(disks["d"], [DecideRecord(6, None, carries_value=False)])
        await _journal_writes(disks["a"], [DecideRecord(6, "v3")])
        assert check.violations == []
        assert check.instances == 2
        await _journal_writes(disks["b"], [DecideRecord(5, "v2")])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(check.violations) == 1
    assert check.violations[0].startswith("group 7 instance 5: a decided 'v1', b decided 'v2'")
