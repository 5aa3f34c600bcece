"""The leader simulation's client history, judged by the project's linearizability checker.

Why: the simulation's own read check compares read indexes with instance numbers, a rule
about the protocol. This records what clients saw, as the crash sessions do, and lets the
same checker (`diskv_trio.testing.linearizability`) judge it, so a read that breaks
linearizability is caught even with the protocol-level check off.

Times are simulated ticks. Events within one tick run one after another, so each gets a
sub-tick offset (`moment`) that keeps their order. Two models, as keys of one history:

- `LOG_KEY`, the applied log (what a state machine serves). Instance s decided with v is an
  append of `token(s, v)`, invoked when v was first handed to a core (`propose`, or `start`
  at s; 0 for a takeover's own no-ops) and returning when instances 0..s were all decided
  somewhere (the earliest a client could be told its write was applied; unknown if never).
  A read answered with index k returns the tokens of instances 0..k with the answering
  peer's own values (the agreed ones below its `min()`, which a snapshot would hold), None
  for an empty log; it is invoked when it reaches the peer and returns when answered.
- `instance_key(s)`, instance s as a write-once register: a put of the same token, returning
  when s was first decided anywhere (chosen), and for every read with index k < s a get
  that found it absent. This is ReadIndex's promise (every instance chosen before a read
  arrives is in it) even while lower instances are still open, which the applied log
  cannot see. An absent-get is recorded only if s was decided before its read returned:
  otherwise the put may always follow it, so leaving it out changes no verdict (and a read
  that covers s is checked on the log).

A read never answered is unknown (the checker drops it); a refused one is not recorded.
Cost: the log key's reads pin the order of every append they cover, so its search stays
near-linear; each instance key holds a put and a few gets. A run of a few hundred ops
takes a few milliseconds (`HistoryCheck.configurations`, `elapsed_s`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from diskv_trio.testing.linearizability import (
    CheckResult,
    Operation,
    Verdict,
    check_history,
)

LOG_KEY: Final = "log"
INSTANCE_KEY_PREFIX: Final = "instance/"
SUBSTEPS: Final = 1_000_000  # events recorded per tick at most; each is 1/SUBSTEPS apart
CHECK_TIMEOUT_S: Final = 30.0  # the checker's time budget per run (it needs milliseconds)
NOT_DECIDED: Final = object()  # a forgotten instance with no recorded decision


def token(seq: int, value: Any) -> str:
    """What instance `seq` decided with `value` appends to the log."""
    if value is NOT_DECIDED:
        return f"{seq}=?;"  # matches no append: the checker reports the read
    return f"{seq}={value!r};"


def instance_key(seq: int) -> str:
    return f"{INSTANCE_KEY_PREFIX}{seq}"


@dataclass(slots=True)
class ReadRecord:
    """One read as its client saw it; `output` is set when answered."""

    read_id: int
    peer: int
    call: float
    ret: float | None = None
    index: int | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryCheck:
    """The checker's verdict on one run's history, and what it cost."""

    verdict: Verdict
    appends: int  # instances on the log
    reads: int  # answered reads
    register_ops: int  # ops on instance registers (puts and the gets of reads that missed)
    configurations: int
    elapsed_s: float
    explanation: str  # for a verdict other than OK: why, in the simulation's words


@dataclass(slots=True)
class ClientHistory:
    """The writes and reads of one run, on the clock of simulated ticks."""

    invoked: dict[str, float] = field(default_factory=dict)  # repr(value) -> first propose
    started: dict[tuple[int, str], float] = field(default_factory=dict)  # (seq, repr) -> first
    decided_at: dict[int, float] = field(default_factory=dict)  # seq -> first decided anywhere
    reads: dict[int, ReadRecord] = field(default_factory=dict)
    _tick: int = -1
    _sub: int = 0

    def moment(self, tick: int) -> float:
        """A time in ticks for an event now: later than every event recorded before it."""
        if tick != self._tick:
            self._tick, self._sub = tick, 0
        self._sub += 1
        assert self._sub < SUBSTEPS, "too many events in one tick"
        return tick + self._sub / SUBSTEPS

    # ---- recording ----------------------------------------------------------------------

    def proposed(self, value: Any, tick: int) -> None:
        if repr(value) not in self.invoked:
            self.invoked[repr(value)] = self.moment(tick)

    def started_at(self, seq: int, value: Any, tick: int) -> None:
        if (seq, repr(value)) not in self.started:
            self.started[seq, repr(value)] = self.moment(tick)

    def decided(self, seq: int, tick: int) -> None:
        if seq not in self.decided_at:
            self.decided_at[seq] = self.moment(tick)

    def read_called(self, read_id: int, peer: int, tick: int) -> None:
        self.reads[read_id] = ReadRecord(read_id, peer, self.moment(tick))

    def read_returned(self, read_id: int, tick: int, log: Sequence[Any]) -> None:
        """The read was answered with instances 0..len(log)-1 holding `log`."""
        record = self.reads[read_id]
        record.ret = self.moment(tick)
        record.index = len(log) - 1
        record.output = "".join(token(s, v) for s, v in enumerate(log)) or None

    def read_refused(self, read_id: int) -> None:
        self.reads.pop(read_id, None)

    # ---- the history --------------------------------------------------------------------

    def operations(self, decisions: Mapping[int, Any]) -> list[Operation]:
        """The history: every decided instance as an append to the log, every read not
        refused as a get of it, and the instance registers reads missed (module docstring)."""
        ops: list[Operation] = []
        calls: dict[int, float] = {}
        complete = 0.0  # when instances 0..seq were all decided; inf once one is missing
        for seq in range(max(decisions, default=-1) + 1):
            at = self.decided_at.get(seq)
            complete = math.inf if at is None else max(complete, at)
            if seq not in decisions:
                continue
            value = decisions[seq]
            call = min(
                self.invoked.get(repr(value), math.inf),
                self.started.get((seq, repr(value)), math.inf),
            )
            calls[seq] = call = 0.0 if math.isinf(call) else call
            ret = None if math.isinf(complete) else complete
            ops.append(Operation(seq, "append", LOG_KEY, token(seq, value), None, call, ret))
        missed: dict[int, list[ReadRecord]] = {}
        for read in self.reads.values():
            # Not answered: ret None, an unknown outcome.
            ops.append(
                Operation(-read.read_id, "get", LOG_KEY, None, read.output, read.call, read.ret)
            )
            if read.ret is None or read.index is None:
                continue
            for seq, at in self.decided_at.items():
                if seq > read.index and at < read.ret and seq in decisions:
                    missed.setdefault(seq, []).append(read)
        for seq in sorted(missed):
            key = instance_key(seq)
            value = token(seq, decisions[seq])
            ops.append(Operation(seq, "put", key, value, None, calls[seq], self.decided_at[seq]))
            for read in missed[seq]:
                ops.append(Operation(-read.read_id, "get", key, None, None, read.call, read.ret))
        return ops

    def check(
        self, decisions: Mapping[int, Any], *, timeout_s: float = CHECK_TIMEOUT_S
    ) -> HistoryCheck:
        """Run the project's checker on the history; never raises on a verdict."""
        ops = self.operations(decisions)
        result = check_history(ops, timeout_s=timeout_s)
        log_ops = [op for op in ops if op.key == LOG_KEY]
        return HistoryCheck(
            result.verdict,
            sum(1 for op in log_ops if op.kind == "append"),
            sum(1 for op in log_ops if op.kind == "get" and not op.unknown),
            len(ops) - len(log_ops),
            sum(key.configurations for key in result.keys),
            result.elapsed_s,
            "" if result.verdict is Verdict.OK else explain(result, self._read_label),
        )

    def _read_label(self, op: Operation) -> str:
        read = self.reads[-op.client_id]
        return (
            f"read r{read.read_id} at peer {read.peer} (arrived at tick {read.call:.6f}, "
            f"answered at {read.ret:.6f}) returned instances up to {read.index}"
        )


def explain(result: CheckResult, read_label: Callable[[Operation], str]) -> str:
    """Why the checker refused the history, in the simulation's words."""
    key = result.failing_key
    if result.verdict is not Verdict.ILLEGAL or key is None:
        return f"the checker gave up on key {key!r} (time budget or configuration limit)"
    if key != LOG_KEY:
        put = next(op for op in result.failing_ops if op.kind == "put")
        late = [
            read_label(op)
            for op in result.failing_ops
            if op.kind == "get" and put.ret is not None and op.call > put.ret
        ]
        chosen = f"instance {put.client_id} was chosen at tick {put.ret:.6f}"
        return f"{chosen}, yet " + "; ".join(late[:3])
    partial = result.partial
    assert partial is not None
    first_return = min(
        (op.ret for op in partial.remaining if op.ret is not None and not op.unknown),
        default=math.inf,
    )
    stuck = [
        read_label(op)
        for op in partial.remaining
        if op.kind == "get" and not op.unknown and op.call <= first_return
    ]
    applied = [op.client_id for op in partial.linearized if op.kind == "append"]
    return (
        f"the longest linearization of the applied log takes {len(applied)} instances (up "
        f"to instance {max(applied, default=-1)}), then none of these fits: "
        + ("; ".join(stuck[:3]) or "(no read: an append out of order)")
    )


__all__ = ["LOG_KEY", "ClientHistory", "HistoryCheck", "ReadRecord", "instance_key", "token"]
