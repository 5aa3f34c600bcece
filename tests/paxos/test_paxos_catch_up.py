"""The leader teaches a lagging follower with decides, never with a new ballot.

A follower whose done value stands still while the leader knows the next instances
decided is sent `Decide` for them, once per period and at most a batch of them; one that
is merely applying (its done moves) or has nothing to learn is sent nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diskv_trio.paxos import _limits
from diskv_trio.paxos._catch_up import CatchUp
from diskv_trio.paxos._messages import Decide
from diskv_trio.paxos._snapshot import InstanceState


@dataclass
class FakeOut:
    sent: list[tuple[int, Any]] = field(default_factory=list)

    def send(self, peer: int, msg: Any) -> None:
        self.sent.append((peer, msg))


@dataclass
class FakeCore:
    me: int = 0
    min_seq: int = 0
    advertised_done: int = -1
    instances: dict[int, InstanceState] = field(default_factory=dict)
    out: FakeOut = field(default_factory=FakeOut)


def core_with_decided(upto: int) -> FakeCore:
    core = FakeCore()
    for seq in range(upto + 1):
        core.instances[seq] = InstanceState(value=f"v{seq}", decided=True)
    core.instances[upto + 1] = InstanceState(value="open")  # accepted, not decided
    return core


def test_a_stuck_follower_gets_decides_for_what_it_misses_only() -> None:
    core = core_with_decided(9)
    catch_up = CatchUp(core)  # type: ignore[arg-type]
    period = _limits.catch_up_after_s
    catch_up.on_done(1, 4, now=0.0)
    catch_up.on_done(1, 4, now=period / 2)
    assert core.out.sent == []  # not stuck long enough: it may be applying
    catch_up.on_done(1, 4, now=period)
    sent = [(peer, msg.seq, msg.value) for peer, msg in core.out.sent]
    assert sent == [(1, seq, f"v{seq}") for seq in range(5, 10)]
    assert all(isinstance(msg, Decide) for _, msg in core.out.sent)
    core.out.sent.clear()
    catch_up.on_done(1, 4, now=period * 1.5)
    assert core.out.sent == []  # once per period
    catch_up.on_done(1, 4, now=period * 2)
    assert len(core.out.sent) == 5  # still stuck: sent again


def test_a_follower_that_moves_or_has_nothing_to_learn_gets_nothing() -> None:
    core = core_with_decided(9)
    catch_up = CatchUp(core)  # type: ignore[arg-type]
    period = _limits.catch_up_after_s
    for step, done in enumerate([3, 5, 7, 9]):
        catch_up.on_done(2, done, now=step * period)
    assert core.out.sent == []  # its done moves every time
    catch_up.on_done(2, 9, now=10 * period)
    assert core.out.sent == []  # it has every decided instance
    catch_up.on_done(0, -1, now=0.0)
    catch_up.on_done(0, -1, now=10 * period)
    assert core.out.sent == []  # the leader itself


def test_a_batch_is_bounded() -> None:
    core = core_with_decided(_limits.catch_up_batch * 3)
    catch_up = CatchUp(core)  # type: ignore[arg-type]
    catch_up.on_done(1, -1, now=0.0)
    catch_up.on_done(1, -1, now=_limits.catch_up_after_s)
    assert [msg.seq for _, msg in core.out.sent] == list(range(_limits.catch_up_batch))
