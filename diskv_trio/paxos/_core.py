"""Sans-I/O Paxos peer: its state, its inputs, and the parts that keep the rules.

Inputs are method calls (`start`, `done`, `truncate`, `on_request`, `on_reply`,
`on_unreachable`, `tick`), each handed the current time; each returns a `Ready` (see
`_ready.py` for the driver's duties). The core never reads a clock, a socket or a file.
It routes each input to its parts (`_parts.py`): the acceptor (`_acceptor.py`), the
proposer (`_proposer.py`), epochs and the fence (`_fence.py`), the leader (`_leader.py`)
and the learner (`_learner.py`); what we know of each other peer is in `_progress.py`, the
journal records in `_records.py`.

Rule kept here (DESIGN.md section 4): a request naming an instance beyond
`instance_ahead_limit()` changes nothing.
"""

from __future__ import annotations

import math
import random
from typing import Any

from . import _limits
from ._errors import PaxosProtocolError
from ._fence import Epochs
from ._messages import (
    Accept,
    Ack,
    Decide,
    DoneNotice,
    EpochNotice,
    Fence,
    Heartbeat,
    LeaderAccept,
    Prepare,
    RangePrepare,
    Reply,
    Request,
)
from ._parts import DEFAULT_PARTS, CoreParts
from ._progress import PeerProgress
from ._ready import Envelope, Fate, Output, Ready
from ._records import RecoveringRecord
from ._snapshot import InstanceState, PaxosRestoredState, snapshot_to_wire

_LEADER_REQUESTS = (RangePrepare, LeaderAccept, Heartbeat)


class PaxosCore:
    """One Paxos peer's decisions. Not thread-safe; one driver feeds it.

    The attributes without a leading underscore are shared with the parts in this
    package; callers outside it use the methods and properties.
    """

    def __init__(
        self,
        *,
        peer_count: int,
        me: int,
        rng: random.Random,
        boot_id: int,
        restored: PaxosRestoredState | None = None,
        recovering: bool = False,
        leader_mode: bool = False,
        lease_s: float | None = None,
        noop: Any = None,
        parts: CoreParts = DEFAULT_PARTS,
    ) -> None:
        """Create a peer.

        Args:
            peer_count: number of peers in the group.
            me: this peer's index.
            rng: randomness for back-off (seeded in simulations).
            boot_id: unique per process start; fence nonces are built from it.
            restored: state rebuilt by `restore_state()`; None for an empty peer.
            recovering: the peer lost its disk (see `_fence.py`).
            leader_mode: run elections and heartbeats (`_leader.py`); without it the peer
                still answers a leader's messages but never campaigns on its own.
            lease_s: read leases of this length (off when None); must stay below the
                election timeout.
            noop: the value proposed in holes (a takeover's unreported instances).
            parts: the classes of the acceptor, proposer, fence, leader and learner.
        """
        if lease_s is not None and not 0 < lease_s < _limits.election_timeout_min_s:
            raise ValueError(f"lease_s={lease_s} must be in (0, election timeout)")
        if peer_count < 1 or not 0 <= me < peer_count:
            raise ValueError(f"bad peer_count={peer_count} me={me}")
        self.peer_count = peer_count
        self.me = me
        self.quorum = peer_count // 2 + 1
        r = restored or PaxosRestoredState()
        self.instances: dict[int, InstanceState] = dict(r.instances)
        self.progress = [PeerProgress() for _ in range(peer_count)]
        for peer, value in r.dones.items():
            if 0 <= peer < peer_count and peer != me:
                self.progress[peer].done = value
        self.own_done = r.own_done
        self.advertised_done = r.own_done
        self.min_seq = r.min
        self.min_adopted = r.min
        self.max_seq = r.max
        self.epochs = Epochs(
            threshold=r.threshold,
            threshold_nonce=r.threshold_nonce,
            established=r.established,
            heard=max(r.threshold, r.established),
        )
        self.floor = r.floor
        self.recovering = r.recovering or recovering
        self._recovery_journalled = r.recovering
        self.leader_mode = leader_mode
        self.lease_s = lease_s
        self.noop = noop
        self.boot_at = -math.inf
        self.range_promise = r.range_promise
        self.promised_max = self.range_promise[0] if self.range_promise else None
        self.decided_max = -1
        for seq, inst in self.instances.items():
            if inst.promised is not None and (
                self.promised_max is None or inst.promised > self.promised_max
            ):
                self.promised_max = inst.promised
            if inst.decided:
                self.decided_max = max(self.decided_max, seq)
        self.out = Output()
        self.proposer = parts.proposer(self, rng)
        self.fencer = parts.fencer(self, rng, boot_id)
        self.acceptor = parts.acceptor(self)
        self.leader = parts.leader(self, random.Random(rng.getrandbits(64)))
        self.learner = parts.learner(self)
        self.learner.drop_below_min()

    # ---- queries --------------------------------------------------------------------------

    @property
    def voting(self) -> bool:
        return not self.recovering

    @property
    def epoch(self) -> int:
        return self.epochs.established

    def min(self) -> int:
        return self.min_seq

    def max(self) -> int:
        return self.max_seq

    def status(self, seq: int) -> tuple[Fate, Any]:
        if seq < self.min_seq:
            return Fate.FORGOTTEN, None
        inst = self.instances.get(seq)
        if inst is not None and inst.decided:
            return Fate.DECIDED, inst.value
        return Fate.PENDING, None

    def instance_ahead_limit(self) -> int:
        """The highest instance a peer's request may name (see `INSTANCE_AHEAD_MAX`)."""
        return max(self.max_seq, self.min_seq, self.floor) + _limits.INSTANCE_AHEAD_MAX

    def is_decided(self, seq: int) -> bool:
        inst = self.instances.get(seq)
        return inst is not None and inst.decided

    def leader_hint(self) -> int | None:
        """The leader this peer believes in (itself when leading), or None."""
        return self.leader.hint()

    @property
    def leading(self) -> bool:
        return self.leader.leading

    def proposing(self, seq: int) -> bool:
        return seq in self.proposer.proposals

    def statistics(self) -> dict[str, Any]:
        return {
            "max": self.max_seq,
            "min": self.min_seq,
            "epoch": self.epochs.established,
            "epoch_threshold": self.epochs.threshold,
            "floor": self.floor,
            "recovering": self.recovering,
            "instances": len(self.instances),
            "proposals": len(self.proposer.proposals),
            "done": self.own_done,
            "done_advertised": self.advertised_done,
            "leading": self.leader.leading,
            "leader": self.leader.hint(),
        }

    def next_wakeup(self) -> float | None:
        """The earliest time at which `tick()` has something to do, or None when idle."""
        times = self.proposer.wake_times()
        times.extend(self.fencer.wake_times())
        times.extend(progress.notice_at for progress in self.progress)
        if self.leader_mode or self.leader.role.value != "follower":
            times.extend(self.leader.wake_times())
        best = min(times, default=math.inf)
        return None if best == math.inf else best

    def snapshot_state(self) -> dict[str, Any]:
        """Everything needed to resume: live instances, done values, epochs, floor, min, max."""
        return snapshot_to_wire(
            PaxosRestoredState(
                instances=self.instances,
                dones={p: pp.done for p, pp in enumerate(self.progress) if p != self.me},
                own_done=self.own_done,
                min=self.min_seq,
                max=self.max_seq,
                threshold=self.epochs.threshold,
                threshold_nonce=self.epochs.threshold_nonce,
                established=self.epochs.established,
                floor=self.floor,
                recovering=self.recovering,
                range_promise=self.range_promise,
            )
        )

    # ---- inputs ---------------------------------------------------------------------------

    def boot(self, now: float) -> Ready:
        """Call once when the driver starts: journals the start of recovery and starts the fence."""
        self.out.begin()
        self.boot_at = now
        if self.leader_mode:
            self.leader.boot(now)
        if self.recovering and not self._recovery_journalled:
            self._recovery_journalled = True
            self.out.record(RecoveringRecord(), sync=True)
        self.fencer.boot(now)
        return self.out.end()

    def start(self, seq: int, value: Any, now: float) -> Ready:
        """Begin agreement on `value` for `seq` (ignored below min, when decided or proposing)."""
        self.out.begin()
        if seq >= self.min_seq:
            self.see(seq)
            inst = self.instances.get(seq)
            if inst is None or not inst.decided:
                self.proposer.start(seq, value, now)
        return self.out.end()

    def propose(self, value: Any, now: float) -> Ready:
        """The leader puts `value` in its next free instance (`Ready.proposed` says whether
        it took it: False when not leading or its queue is full)."""
        self.out.begin()
        self.out.ready.proposed = self.leader.propose(value, now)
        return self.out.end()

    def read(self, read_id: int, now: float) -> Ready:
        """A linearizable read: `Ready.reads` gets (read_id, index) once confirmed (answer
        after applying every instance <= index), `Ready.reads_failed` read_id if refused."""
        self.out.begin()
        self.leader.read(read_id, now)
        return self.out.end()

    def campaign(self, now: float) -> Ready:
        """Run a range prepare now (the election timer does this on its own)."""
        self.out.begin()
        self.leader.campaign(now)
        return self.out.end()

    def set_eligible(self, eligible: bool, now: float) -> Ready:
        """Whether this peer may lead; False also steps it down now."""
        self.out.begin()
        self.leader.eligible = eligible
        if not eligible:
            self.leader.step_down(now)
        return self.out.end()

    def heartbeat(self, now: float) -> Ready:
        """The leader sends a heartbeat round now (its timer does this on its own)."""
        self.out.begin()
        if self.leader.leading:
            self.leader.send_round(now)
        return self.out.end()

    def done(self, seq: int) -> Ready:
        """The application no longer needs instances <= seq."""
        self.out.begin()
        self.learner.done(seq)
        return self.out.end()

    def truncate(self, upto: int) -> Ready:
        """The application installed a state covering every instance <= upto.

        This peer holds no Paxos state for those instances (a state transfer skipped them),
        so it forgets them at once and answers Forgotten for them: a lagging peer that asks
        learns to fetch a state transfer instead of waiting for a vote that cannot come.
        Every instance <= upto was decided (someone applied it), so this loses nothing.
        """
        self.out.begin()
        self.learner.truncate(upto)
        return self.out.end()

    def advance(self, ready: Ready, now: float) -> None:
        """The driver made `ready`'s records durable (if asked) and sent its messages."""
        self.learner.advertised(ready, now)

    def on_request(self, msg: Request, now: float) -> Ready:
        """A request from a peer (or this peer's own proposer). The reply is in `Ready.reply`.

        Raises:
            PaxosProtocolError: unknown sender, or an instance beyond `instance_ahead_limit()`;
                nothing was changed or journalled.
        """
        self.out.begin()
        if not 0 <= msg.src < self.peer_count:
            raise PaxosProtocolError(f"unknown peer {msg.src}")
        seq = getattr(msg, "seq", None)
        limit = self.instance_ahead_limit()
        if seq is not None and seq > limit:
            raise PaxosProtocolError(
                f"instance {seq} is beyond {limit}, too far ahead of this peer"
            )
        self.learner.heard_done(msg.src, msg.done)
        out = self.out
        if isinstance(msg, Prepare):
            out.ready.reply = self.acceptor.on_prepare(msg, now)
        elif isinstance(msg, Accept):
            out.ready.reply = self.acceptor.on_accept(msg, now)
        elif isinstance(msg, RangePrepare):
            out.ready.reply = self.acceptor.on_range_prepare(msg, now)
        elif isinstance(msg, LeaderAccept):
            out.ready.reply = self.acceptor.on_leader_accept(msg, now)
        elif isinstance(msg, Heartbeat):
            out.ready.reply = self.acceptor.on_heartbeat(msg, now)
        elif isinstance(msg, Decide):
            self.learn(msg.seq, msg.value, now)
            out.ready.reply = self._ack()
        elif isinstance(msg, Fence):
            out.ready.reply = self.fencer.answer(msg, now)
        elif isinstance(msg, EpochNotice):
            self.epochs.heard = max(self.epochs.heard, msg.epoch)
            if not self.recovering:
                self.epochs.establish(msg.epoch, out)
                self.fencer.resume_if_unblocked(now)
            out.ready.reply = self._ack()
        else:
            out.ready.reply = self._ack()
        self.learner.forget()
        return out.end()

    def on_reply(self, envelope: Envelope, reply: Reply, now: float) -> Ready:
        """The reply to a request this peer sent."""
        self.out.begin()
        request = envelope.msg
        if reply.src != envelope.dst:
            raise PaxosProtocolError(f"reply from {reply.src} to a request for {envelope.dst}")
        self.learner.heard_done(reply.src, reply.done)
        if reply.src != self.me:
            self.progress[reply.src].acked(request.done)
        if isinstance(request, DoneNotice):
            self.progress[envelope.dst].notice_answered(self.advertised_done, now, reached=True)
        elif isinstance(request, Prepare | Accept):
            self.proposer.on_reply(envelope.dst, request, reply, now)
        elif isinstance(request, _LEADER_REQUESTS):
            self.leader.on_reply(envelope.dst, request, reply, now)
        elif isinstance(request, Fence):
            self.fencer.on_reply(envelope.dst, request, reply, now)
        self.learner.forget()
        return self.out.end()

    def on_unreachable(self, envelope: Envelope, now: float) -> Ready:
        """The request could not be delivered or its reply was lost."""
        self.out.begin()
        request = envelope.msg
        peer = envelope.dst
        if isinstance(request, DoneNotice):
            self.progress[peer].notice_answered(self.advertised_done, now, reached=False)
        elif isinstance(request, Prepare | Accept):
            self.proposer.on_unreachable(peer, request, now)
        elif isinstance(request, _LEADER_REQUESTS):
            self.leader.on_unreachable(peer, request, now)
        elif isinstance(request, Fence):
            self.fencer.on_unreachable(peer, request, now)
        return self.out.end()

    def tick(self, now: float) -> Ready:
        """Fire the timers that are due: proposer retries, fence retries, done notices."""
        self.out.begin()
        self.proposer.tick(now)
        self.fencer.tick(now)
        if self.leader_mode or self.leader.role.value != "follower":
            self.leader.tick(now)
        self.learner.send_notices(now)
        return self.out.end()

    # ---- shared with the parts ------------------------------------------------------------

    def resume_proposals(self, now: float) -> None:
        """Recovery or a fence ended: parked proposals go on."""
        self.fencer.deferred = False
        self.proposer.wake_parked(now)
        self.leader.resume(now)

    def learn(self, seq: int, value: Any, now: float) -> None:
        """`value` is decided in `seq` (from a decide, an acceptor, or our own majority)."""
        self.learner.learn(seq, value, now)

    def _ack(self) -> Reply:
        return Ack(self.me, self.advertised_done)

    def see(self, seq: int) -> None:
        if seq > self.max_seq:
            self.max_seq = seq
