"""Unit tests of the sans-I/O Paxos core: messages in, actions out.

Each test feeds `PaxosCore` requests or replies and checks the Ready it returns: journal
records and whether they must be synced, the reply, the messages to send.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from diskv_trio.paxos import Ballot, Fate, PaxosCore, PaxosProtocolError
from diskv_trio.paxos._messages import (
    REPLY_TYPES,
    REQUEST_TYPES,
    Accept,
    Accepted,
    Ack,
    AlreadyDecided,
    Decide,
    DoneNotice,
    EpochNotice,
    Fence,
    FenceAck,
    FenceBusy,
    FenceReject,
    Forgotten,
    Heartbeat,
    HeartbeatReply,
    LeaderAccept,
    NotVoting,
    Prepare,
    Promise,
    RangePrepare,
    RangePromise,
    Rejected,
    StaleEpoch,
    from_wire,
    method_for,
)
from diskv_trio.paxos._ready import Envelope, Ready
from diskv_trio.paxos._records import RECORD_KEY, DecideRecord, PaxosRecord, restore_state


def core(me: int = 0, n: int = 3, **kwargs: Any) -> PaxosCore:
    return PaxosCore(peer_count=n, me=me, rng=random.Random(1), boot_id=7, **kwargs)


def kinds(records: list[PaxosRecord]) -> list[str]:
    return [r.KIND for r in records]


B1 = Ballot(0, 1, 1)
B2 = Ballot(0, 2, 2)


# ---- acceptor ---------------------------------------------------------------------------


def test_prepare_promises_and_journals_with_sync() -> None:
    c = core()
    ready = c.on_request(Prepare(1, -1, 5, B1), 0.0)
    assert ready.reply == Promise(0, -1, 5, B1, None, None)
    assert kinds(ready.records) == ["p"]
    assert ready.must_sync
    assert c.max() == 5


def test_lower_prepare_is_rejected_without_a_record() -> None:
    c = core()
    c.on_request(Prepare(2, -1, 5, B2), 0.0)
    ready = c.on_request(Prepare(1, -1, 5, B1), 0.0)
    assert ready.reply == Rejected(0, -1, 5, B1, B2)
    assert ready.records == []
    assert not ready.must_sync


def test_accept_below_promise_rejected_at_or_above_accepted() -> None:
    c = core()
    c.on_request(Prepare(2, -1, 5, B2), 0.0)
    assert isinstance(c.on_request(Accept(1, -1, 5, B1, "a"), 0.0).reply, Rejected)
    ready = c.on_request(Accept(2, -1, 5, B2, "b"), 0.0)
    assert ready.reply == Accepted(0, -1, 5, B2)
    assert kinds(ready.records) == ["a"] and ready.must_sync
    # A later prepare reports the accepted ballot and value.
    promise = c.on_request(Prepare(1, -1, 5, Ballot(0, 3, 1)), 0.0).reply
    assert promise == Promise(0, -1, 5, Ballot(0, 3, 1), B2, "b")


def test_decided_instance_answers_with_its_value() -> None:
    c = core()
    ready = c.on_request(Decide(1, -1, 4, "v"), 0.0)
    assert ready.reply == Ack(0, -1)
    assert kinds(ready.records) == ["d"] and not ready.must_sync
    assert ready.decided == [(4, "v")]
    assert c.on_request(Prepare(1, -1, 4, B2), 0.0).reply == AlreadyDecided(0, -1, 4, "v")
    assert c.on_request(Accept(1, -1, 4, B2, "w"), 0.0).reply == AlreadyDecided(0, -1, 4, "v")
    assert c.status(4) == (Fate.DECIDED, "v")


# ---- fences and recovery ----------------------------------------------------------------


def test_fence_persists_epoch_then_old_ballots_are_stale() -> None:
    c = core()
    c.on_request(Prepare(1, -1, 9, B1), 0.0)
    ready = c.on_request(Fence(2, -1, 3, 111), 0.0)
    assert ready.reply == FenceAck(0, -1, 3, 111, 9)
    assert kinds(ready.records) == ["e"] and ready.must_sync
    stale = c.on_request(Accept(1, -1, 9, B1, "old"), 0.0).reply
    assert stale == StaleEpoch(0, -1, 9, B1, 3)
    assert c.status(9)[0] is Fate.PENDING


def test_fence_at_or_below_threshold_rejected_unless_same_nonce() -> None:
    c = core()
    c.on_request(Fence(2, -1, 3, 111), 0.0)
    assert c.on_request(Fence(1, -1, 3, 222), 0.0).reply == FenceReject(0, -1, 3, 222)
    assert c.on_request(Fence(1, -1, 2, 333), 0.0).reply == FenceReject(0, -1, 3, 333)
    # The same attempt retried (reply lost) is acked again.
    assert isinstance(c.on_request(Fence(2, -1, 3, 111), 0.0).reply, FenceAck)


def test_recovering_peer_does_not_vote_and_fences_until_a_majority_of_others() -> None:
    c = core(me=2, recovering=True)
    assert not c.voting
    boot = c.boot(0.0)
    assert kinds(boot.records)[0] == "r" and boot.must_sync
    fences = [e for e in boot.messages if isinstance(e.msg, Fence)]
    assert sorted(e.dst for e in fences) == [0, 1]
    assert isinstance(c.on_request(Prepare(0, -1, 1, B1), 0.0).reply, NotVoting)
    assert isinstance(c.on_request(Fence(1, -1, 9, 5), 0.0).reply, FenceBusy)
    fence = fences[0].msg
    assert isinstance(fence, Fence)
    # A reply to another attempt's nonce does not count.
    stale = FenceAck(0, -1, fence.epoch, fence.nonce + 1, 50)
    c.on_reply(fences[0], stale, 0.01)
    one = c.on_reply(fences[0], FenceAck(0, -1, fence.epoch, fence.nonce, 7), 0.01)
    assert not c.voting and one.voting is None
    two = c.on_reply(fences[1], FenceAck(1, -1, fence.epoch, fence.nonce, 4), 0.01)
    assert c.voting and two.voting is True
    assert two.must_sync and "f" in kinds(two.records)
    assert c.floor == 7 and c.max() >= 7 and c.epoch == fence.epoch
    assert any(isinstance(e.msg, EpochNotice) for e in two.messages)
    # Never votes at or below the floor; votes above it with the new epoch only.
    assert isinstance(
        c.on_request(Prepare(0, -1, 7, Ballot(fence.epoch, 1, 0)), 0.0).reply, NotVoting
    )
    assert isinstance(c.on_request(Prepare(0, -1, 8, B1), 0.0).reply, StaleEpoch)
    assert isinstance(
        c.on_request(Prepare(0, -1, 8, Ballot(fence.epoch, 1, 0)), 0.0).reply, Promise
    )


def test_recovering_fence_retries_above_a_rejecting_epoch() -> None:
    c = core(me=0, recovering=True)
    boot = c.boot(0.0)
    envelopes = [e for e in boot.messages if isinstance(e.msg, Fence)]
    first = envelopes[0].msg
    assert isinstance(first, Fence)
    for env in envelopes:
        c.on_reply(env, FenceReject(env.dst, -1, 40, first.nonce), 0.0)
    retry = c.tick(1.0)
    again = [e.msg for e in retry.messages if isinstance(e.msg, Fence)]
    assert again and all(m.epoch > 40 and m.nonce != first.nonce for m in again)


def test_intact_peer_fences_before_proposing_above_a_learned_epoch() -> None:
    c = core(me=0)
    ready = c.start(1, "v", 0.0)
    prepares = [e for e in ready.messages if isinstance(e.msg, Prepare)]
    for env in prepares:
        msg = env.msg
        assert isinstance(msg, Prepare)
        c.on_reply(env, StaleEpoch(env.dst, -1, 1, msg.ballot, 5), 0.0)
    retry = c.tick(10.0)
    msgs = [e.msg for e in retry.messages]
    assert msgs and all(isinstance(m, Fence) and m.epoch > 5 for m in msgs)
    assert c.epoch == 0  # not established until the fence completes


# ---- proposer ---------------------------------------------------------------------------


def deliver_all(cores: list[PaxosCore], first: Ready, now: float = 0.0) -> None:
    """Deliver every message (and reply) among `cores` until none is left."""
    queue: list[Envelope] = list(first.messages)
    sources: list[int] = [first_src(first)] * len(queue)
    while queue:
        env = queue.pop(0)
        src = sources.pop(0)
        reply_ready = cores[env.dst].on_request(env.msg, now)
        assert reply_ready.reply is not None
        nxt = cores[src].on_reply(env, reply_ready.reply, now)
        queue.extend(nxt.messages)
        sources.extend([src] * len(nxt.messages))


def first_src(ready: Ready) -> int:
    return ready.messages[0].msg.src


def test_proposer_decides_and_broadcasts() -> None:
    cores = [core(me=i) for i in range(3)]
    ready = cores[0].start(3, "x", 0.0)
    assert sorted(e.dst for e in ready.messages) == [0, 1, 2]
    deliver_all(cores, ready)
    assert [c.status(3) for c in cores] == [(Fate.DECIDED, "x")] * 3


def test_proposer_adopts_highest_accepted_value() -> None:
    cores = [core(me=i) for i in range(3)]
    cores[1].on_request(Accept(2, -1, 3, Ballot(0, 0, 2), "old"), 0.0)
    ready = cores[0].start(3, "new", 0.0)
    deliver_all(cores, ready)
    assert [c.status(3) for c in cores] == [(Fate.DECIDED, "old")] * 3


def test_round_without_majority_backs_off_then_retries() -> None:
    c = core(me=0)
    ready = c.start(1, "v", 0.0)
    for env in ready.messages:
        c.on_unreachable(env, 0.0)
    wake = c.next_wakeup()
    assert wake is not None and 0.0 < wake <= 0.3
    assert c.tick(wake - 1e-6).messages == []
    retry = c.tick(wake)
    ballots = {e.msg.ballot for e in retry.messages if isinstance(e.msg, Prepare)}
    assert len(ballots) == 1 and ballots.pop() > Ballot(0, 1, 0)


def test_idle_core_has_no_timers() -> None:
    cores = [core(me=i) for i in range(3)]
    deliver_all(cores, cores[0].start(0, "x", 0.0))
    assert all(c.next_wakeup() is None for c in cores)


# ---- done, min, max, forgetting ---------------------------------------------------------


def test_min_advances_only_when_every_peer_is_done() -> None:
    cores = [core(me=i) for i in range(3)]
    for seq in range(3):
        deliver_all(cores, cores[0].start(seq, seq, 0.0))
    cores[0].done(1)
    cores[1].done(1)
    assert cores[0].min() == 0
    ready = cores[2].done(2)
    assert ready.must_sync and ready.advertise_done == 2
    # Not advertised before the driver synced and advanced.
    assert cores[2].on_request(DoneNotice(0, -1), 0.0).reply == Ack(2, -1)
    cores[2].advance(ready, 0.0)
    assert cores[2].on_request(DoneNotice(0, -1), 0.0).reply == Ack(2, 2)
    cores[0].on_request(DoneNotice(1, 1), 0.0)
    ready = cores[0].on_request(DoneNotice(2, 2), 0.0)
    assert ready.forgotten and cores[0].min() == 2
    assert cores[0].status(1) == (Fate.FORGOTTEN, None)
    assert cores[0].status(2)[0] is Fate.DECIDED
    assert cores[0].max() == 2
    assert cores[0].start(0, "late", 0.0).messages == []  # below min: ignored
    assert isinstance(cores[0].on_request(Prepare(1, -1, 1, B1), 0.0).reply, Forgotten)


def test_changed_done_is_sent_alone_only_to_peers_that_lack_it() -> None:
    c = core(me=0)
    ready = c.done(4)
    c.advance(ready, 0.0)
    wake = c.next_wakeup()
    assert wake is not None
    notices = c.tick(wake).messages
    assert sorted(e.dst for e in notices) == [1, 2]
    for env in notices:
        c.on_reply(env, Ack(env.dst, -1), wake)
    assert c.next_wakeup() is None


# ---- restore ----------------------------------------------------------------------------


def test_restore_from_snapshot_and_records() -> None:
    c = core(me=0)
    journal: list[PaxosRecord] = []
    journal += c.on_request(Decide(1, -1, 0, "zero"), 0.0).records
    journal += c.done(0).records
    snapshot = c.snapshot_state()
    journal.clear()
    journal += c.on_request(Prepare(1, -1, 1, B1), 0.0).records
    journal += c.on_request(Accept(1, -1, 1, B1, "one"), 0.0).records
    journal += c.on_request(Decide(1, -1, 2, "two"), 0.0).records
    journal += c.on_request(Fence(1, -1, 4, 99), 0.0).records
    journal += c.done(2).records  # own done after the snapshot: not restored
    restored = restore_state(snapshot, journal)
    again = core(me=0, restored=restored)
    assert again.status(0) == (Fate.DECIDED, "zero")
    assert again.status(2) == (Fate.DECIDED, "two")
    assert again.on_request(Prepare(2, -1, 1, Ballot(4, 1, 2)), 0.0).reply == Promise(
        0, 0, 1, Ballot(4, 1, 2), B1, "one"
    )
    assert isinstance(again.on_request(Prepare(2, -1, 1, Ballot(3, 9, 2)), 0.0).reply, StaleEpoch)
    assert again.statistics()["done"] == 0
    assert again.voting


def test_restore_rejects_malformed_records() -> None:
    with pytest.raises(PaxosProtocolError):
        restore_state(None, [{RECORD_KEY: "p", "s": "x", "b": [0, 1, 0]}])
    with pytest.raises(PaxosProtocolError):
        restore_state(None, [{RECORD_KEY: "zz"}])
    assert restore_state(None, [{"app": 1}]).max == -1  # not ours: skipped


# ---- wire -------------------------------------------------------------------------------

SAMPLES = [
    Prepare(1, 3, 5, B1),
    Accept(1, 3, 5, B1, {"k": [1, b"x"]}),
    Decide(1, -1, 5, "v"),
    Fence(2, -1, 3, 1 << 40),
    EpochNotice(2, -1, 3),
    DoneNotice(2, 9),
    Promise(0, -1, 5, B1, None, None),
    Promise(0, -1, 5, B2, B1, "a"),
    Accepted(0, -1, 5, B1),
    Rejected(0, -1, 5, B1, B2),
    StaleEpoch(0, -1, 5, B1, 4),
    NotVoting(0, -1, 5, B1),
    AlreadyDecided(0, -1, 5, "v"),
    Forgotten(0, -1, 5, 9),
    FenceAck(0, -1, 3, 7, 12),
    FenceReject(0, -1, 3, 7),
    FenceBusy(0, -1, 7),
    Ack(0, -1),
    RangePrepare(1, -1, 5, B1),
    LeaderAccept(1, -1, 5, B1, ["v"], 4),
    Heartbeat(1, -1, B1, 4, 2),
    RangePromise(0, -1, B1, 6, ((6, B1, "a"), (8, B2, None)), ((5, "d"),)),
    HeartbeatReply(0, -1, B1, 2, False, B2, 0),
]


def test_every_message_type_round_trips() -> None:
    assert {type(m) for m in SAMPLES} == set(REQUEST_TYPES) | set(REPLY_TYPES)
    for msg in SAMPLES:
        assert from_wire(msg.to_wire()) == msg
    assert method_for(Prepare(1, 3, 5, B1)) == "paxos.prepare"


@pytest.mark.parametrize(
    "wire",
    [
        None,
        {"k": "nope"},
        {"k": "prepare", "src": 1, "done": -1, "seq": 1},
        {"k": "prepare", "src": 1, "done": -1, "seq": 1, "ballot": [0, 1]},
        {"k": "prepare", "src": -1, "done": -1, "seq": 1, "ballot": [0, 1, 1]},
        {"k": "prepare", "src": 1, "done": -1, "seq": True, "ballot": [0, 1, 1]},
        {"k": "prepare", "src": 1, "done": -1, "seq": 1, "ballot": [0, 1, 1], "x": 1},
    ],
)
def test_malformed_messages_are_refused(wire: Any) -> None:
    with pytest.raises(PaxosProtocolError):
        from_wire(wire)


def test_reply_where_request_expected_is_refused() -> None:
    with pytest.raises(PaxosProtocolError):
        from_wire(Ack(0, -1).to_wire(), expect=REQUEST_TYPES)


def test_decision_of_accepted_value_is_journalled_without_the_value() -> None:
    """A value is journalled once per acceptor: the decided record points at the accept."""
    c = core()
    journal = list(c.on_request(Accept(1, -1, 3, B1, "big" * 100), 0.0).records)
    decided = c.on_request(Decide(1, -1, 3, "big" * 100), 0.0).records
    assert decided == [DecideRecord(3, None, carries_value=False)]
    assert [r.to_wire() for r in decided] == [{RECORD_KEY: "d", "s": 3}]
    other = c.on_request(Decide(1, -1, 4, "w"), 0.0).records
    assert [r.to_wire() for r in other] == [{RECORD_KEY: "d", "s": 4, "v": "w"}]
    restored = restore_state(None, journal + decided + other)
    again = core(restored=restored)
    assert again.status(3) == (Fate.DECIDED, "big" * 100)
    assert again.status(4) == (Fate.DECIDED, "w")
    with pytest.raises(PaxosProtocolError):
        restore_state(None, decided)


def test_truncate_forgets_and_answers_forgotten_for_covered_instances() -> None:
    """After a state transfer covering <= 40, prepares for those get Forgotten(min=41), so a
    lagging asker fetches a state instead of waiting for votes that cannot come."""
    c = core()
    c.on_request(Prepare(1, -1, 12, B1), 0.0)
    ready = c.truncate(40)
    assert kinds(ready.records) == ["m"]
    assert c.min() == 41
    assert c.status(12) == (Fate.FORGOTTEN, None)
    reply = c.on_request(Prepare(1, -1, 30, B2), 0.0).reply
    assert isinstance(reply, Forgotten)
    assert reply.min == 41
    assert c.max() >= 40
    assert isinstance(c.on_request(Prepare(1, -1, 41, B2), 0.0).reply, Promise)


def test_restore_keeps_instances_after_the_snapshot_done_value() -> None:
    """A journalled min above the snapshot's own done value does not drop instances the
    application still has to re-apply after a restart."""
    decided = {RECORD_KEY: "d", "s": 5, "v": "x"}
    advanced = {RECORD_KEY: "m", "m": 9, "dn": {"1": 8, "2": 8}}
    state = restore_state(None, [decided, advanced])
    assert state.min == 0
    assert 5 in state.instances
