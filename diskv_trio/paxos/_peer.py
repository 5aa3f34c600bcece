"""Trio driver of `PaxosCore`: journal writes, RPCs, timers.

Durability (raft's Ready/Advance): every input to the core happens synchronously and its
records are appended to the storage before any other task runs, so the journal order is the
order of the state changes. A reply to a request leaves only after `storage.sync()` when the
core asked for it; outgoing messages go through one flusher task that syncs (once for all
that queued up) before sending anything that needs it. `core.advance()` runs after that.

A request a peer sends is checked here (decoded, its method and sender bound to the
authenticated connection, its instance bounded) and refused with `PaxosProtocolError`
before it changes or journals anything; the server's wiring turns that into the caller's
typed error. A call this peer makes that fails in any way is `PaxosUnreachable` to the core.

How the application learns instances it missed (after a restart or a disk loss): for every
instance it needs and does not know, `start(seq, noop)` then `await wait_decided(seq)`.
An instance already decided elsewhere is learned from the first acceptor that answers with
it; otherwise the no-op itself is decided. After a disk loss, wait for `voting` to become
True, fetch the application's state from an intact peer (that is the application's
business, not Paxos'), call `done()` up to what that state covers, then learn the rest so.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import trio
from trio_util import AsyncValue

from diskv_trio import _entropy

from ._call import call_peer
from ._core import PaxosCore
from ._errors import (
    PaxosForgotten,
    PaxosProtocolError,
    PaxosStorageError,
)
from ._messages import (
    METHOD_BY_KIND,
    REQUEST_TYPES,
    Request,
    from_wire,
    method_for,
)
from ._read_waiters import ReadWaiters
from ._ready import Envelope, Fate, Ready
from ._records import PaxosRecord, PaxosRestoredState, restore_state
from ._sender import SenderCheck
from ._storage import PaxosStorage, PaxosTransport, normalize_value

logger = logging.getLogger("diskv.paxos")

Handler = Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]
"""A "paxos.*" method: (arguments, the net layer's call context) -> the reply's map."""


class PaxosPeer:
    """One Paxos peer: `start`/`status`/`done`/`max`/`min` over a durable acceptor.

    Serve `handlers()` on the process's RpcServer and run `run()` in a nursery
    (`await nursery.start(peer.run)`); cancel it to stop.
    """

    def __init__(
        self,
        *,
        peer_count: int,
        me: int,
        storage: PaxosStorage,
        transport: PaxosTransport,
        restored: PaxosRestoredState | None = None,
        recovering: bool = False,
        rng: random.Random | None = None,
        peer_ids: tuple[str, ...] | None = None,
        leader_mode: bool = False,
        lease_s: float | None = None,
        noop: Any = None,
    ) -> None:
        """Create a peer.

        Args:
            peer_count: size of the group.
            me: this peer's index in the group.
            storage: the journal (see `PaxosStorage`).
            transport: calls to the other peers.
            restored: `PaxosPeer.restore(...)` of this peer's journal; None when empty.
            recovering: the peer lost its disk: it votes only after the fence (`voting`).
            rng: randomness for back-off (tests may seed it).
            peer_ids: the authenticated node id of each peer, by index. When given, a request
                is served only from a connection authenticated as role ``peer`` with one of
                these ids, and only if the message's `src` is that id's index: a sender is
                who the connection proved to be, never what the message says. None (the
                in-process simulation and tests) trusts `src`.
            leader_mode: run the stable leader (elections, heartbeats, `propose`, `read`);
                without it every instance is proposed with `start` alone.
            lease_s: read leases of this length (off when None; leader mode only).
            noop: the value a new leader proposes in holes; the application must read it
                as "nothing to apply".

        Must be called from Trio (it reads the clock).
        """
        self._senders = SenderCheck(peer_ids, peer_count)
        self._core = PaxosCore(
            peer_count=peer_count,
            me=me,
            rng=rng if rng is not None else _entropy.new_random(),
            boot_id=_entropy.randbits(32),
            restored=restored,
            recovering=recovering,
            leader_mode=leader_mode,
            lease_s=lease_s,
            noop=normalize_value(noop),
        )
        self.leader_mode = leader_mode
        self.leading: AsyncValue[bool] = AsyncValue(False)
        self.led_upto = -1
        """When `leading` turns False: every instance this peer sent accepts for as leader is
        <= this; a value it was given by `propose` and not decided <= it never will be."""
        self._reads = ReadWaiters()
        self.peer_count = peer_count
        self.me = me
        self._storage = storage
        self._transport = transport
        self.voting: AsyncValue[bool] = AsyncValue(self._core.voting)
        self._waiters: dict[int, trio.Event] = {}
        self._outbox: list[Ready] = []
        self._outbox_ready = trio.Event()
        self._timers_changed = trio.Event()
        self._timer_at: float | None = None  # when the timer task will wake next
        self._flushing = False  # the flusher awaits a sync: later sends queue behind it
        self._nursery: trio.Nursery | None = None
        # Boot now, so that the start of a recovery is journalled before anything else.
        self._apply(self._core.boot(trio.current_time()))

    # ---- construction helpers -------------------------------------------------------------

    @staticmethod
    def restore(
        snapshot_state: Mapping[str, Any] | None,
        records: Iterable[PaxosRecord | Mapping[str, Any]],
    ) -> PaxosRestoredState:
        """Rebuild the state from `snapshot_state()` and the records journalled after it, in
        order: their wire maps as the journal replays them (or typed records). Maps that are
        not Paxos records are skipped.

        Raises:
            PaxosProtocolError: a malformed snapshot or record.
        """
        return restore_state(snapshot_state, records)

    def handlers(self) -> dict[str, Handler]:
        """The "paxos.*" methods, for an RpcServer."""
        return {method: self._handle for method in METHOD_BY_KIND.values()}

    # ---- the course API -------------------------------------------------------------------

    @property
    def is_voting(self) -> bool:
        return self.voting.value

    async def wait_voting(self) -> None:
        """Return once this peer votes (at once unless it is recovering from disk loss)."""
        await self.voting.wait_value(True)

    def start(self, seq: int, value: Any) -> None:
        """Begin agreement on `value` for instance `seq`; returns at once.

        Ignored if `seq < min()`, if the instance is decided here or already being proposed.

        Raises:
            TypeError: `value` is not CBOR-encodable.
        """
        if seq < self._core.min():
            return
        self._apply(self._core.start(seq, normalize_value(value), trio.current_time()))

    def propose(self, value: Any) -> bool:
        """As leader, place `value` in the next free instance; False if not leading or the
        leader's queue is full. Watch `leading` and `led_upto` for the outcome of a step-down.

        Raises:
            TypeError: `value` is not CBOR-encodable.
        """
        ready = self._core.propose(normalize_value(value), trio.current_time())
        self._apply(ready)
        return bool(ready.proposed)

    async def read(self) -> int:
        """A linearizable read (ReadIndex): the instance a read must have applied, once a
        heartbeat round sent after this call confirmed this peer still leads.

        Raises:
            PaxosNotLeader: this peer is not the leader, or stopped being it meanwhile.
        """
        read_id = self._reads.new()
        self._apply(self._core.read(read_id, trio.current_time()))
        return await self._reads.wait(read_id, self.leader_hint)

    def campaign(self) -> None:
        """Run for leader now (the election timer does this on its own): for a follower
        that cannot reach the leader its peers still hear."""
        if not self.leading.value:
            self._apply(self._core.campaign(trio.current_time()))

    def set_eligible(self, eligible: bool) -> None:
        """Whether this peer may lead (a replica whose disk is full may not: it could not
        sync its own accepts); False also steps it down now."""
        self._apply(self._core.set_eligible(eligible, trio.current_time()))

    def leader_hint(self) -> int | None:
        """The leader this peer believes in (itself when leading), or None."""
        return self._core.leader_hint()

    def status(self, seq: int) -> tuple[Fate, Any]:
        """This peer's knowledge of instance `seq`; never contacts other peers."""
        return self._core.status(seq)

    async def wait_decided(self, seq: int) -> Any:
        """Return the decided value of `seq` once this peer learns it.

        Raises:
            PaxosForgotten: the instance is (or becomes) below `min()`.
        """
        while True:
            fate, value = self._core.status(seq)
            if fate is Fate.DECIDED:
                return value
            if fate is Fate.FORGOTTEN:
                raise PaxosForgotten(f"instance {seq} is below min() = {self._core.min()}")
            event = self._waiters.get(seq)
            if event is None:
                event = self._waiters[seq] = trio.Event()
            await event.wait()

    def done(self, seq: int) -> None:
        """The application no longer needs any instance <= seq."""
        self._apply(self._core.done(seq))

    def truncate(self, upto: int) -> None:
        """The application's state now covers every instance <= upto (a state transfer):
        forget them here and answer Forgotten for them."""
        self._apply(self._core.truncate(upto))

    def max(self) -> int:
        """The highest instance this peer knows of, or -1."""
        return self._core.max()

    def min(self) -> int:
        """1 + the minimum done value over all peers; instances below are forgotten."""
        return self._core.min()

    def snapshot_state(self) -> dict[str, Any]:
        """Everything needed to resume (live instances, done values, epochs, floor, min, max).

        Consistent with exactly the records appended so far: take it and the journal's LSN
        without awaiting in between.
        """
        return self._core.snapshot_state()

    def statistics(self) -> dict[str, Any]:
        """max, min, epoch, floor, recovering, instances in memory, and a few more."""
        return self._core.statistics()

    # ---- running --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work: proposers, done propagation, the fence. Cancel to stop."""
        if self._nursery is not None:
            raise RuntimeError("PaxosPeer.run() is already running")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                nursery.start_soon(self._flush_loop)
                nursery.start_soon(self._timer_loop)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _flush_loop(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready = trio.Event()
            batch, self._outbox = self._outbox, []
            if any(ready.must_sync for ready in batch):
                self._flushing = True
                try:
                    await self._sync()
                finally:
                    self._flushing = False
            for ready in batch:
                self._after_sync(ready)

    async def _timer_loop(self) -> None:
        while True:
            wake = self._core.next_wakeup()
            self._timers_changed = trio.Event()
            self._timer_at = wake
            if wake is None or wake > trio.current_time():
                with trio.move_on_at(math.inf if wake is None else wake):
                    await self._timers_changed.wait()
            self._timer_at = None
            now = trio.current_time()
            wake = self._core.next_wakeup()
            if wake is not None and wake <= now:
                self._apply(self._core.tick(now))
                await trio.lowlevel.checkpoint()  # a timer the tick left due starves no one

    def _apply(self, ready: Ready) -> None:
        """Append the records now (keeping journal order = state order), then send at once
        when nothing waits for a sync, else queue behind the sync."""
        for record in ready.records:
            self._storage.append(record)
        self._notify(ready)
        needs_flush = ready.must_sync or ready.advertise_done is not None
        direct = not self._outbox and not self._flushing and self._nursery is not None
        if needs_flush and not ready.messages and ready.voting is None and self._nursery:
            # Nothing to send (a new done value): sync beside the flusher, so the messages
            # that follow (the leader's next accepts) do not wait for this sync.
            self._nursery.start_soon(self._sync_then_advance, ready)
        elif not needs_flush and direct:
            if ready.messages or ready.voting is not None:
                self._after_sync(ready)
        elif needs_flush or ready.messages or ready.voting is not None:
            self._outbox.append(ready)
            self._outbox_ready.set()
        self._reschedule()

    async def _sync_then_advance(self, ready: Ready) -> None:
        await self._sync()
        self._after_sync(ready)

    def _reschedule(self) -> None:
        """Wake the timer task only if the earliest timer moved earlier."""
        wake = self._core.next_wakeup()
        if wake is not None and (self._timer_at is None or wake < self._timer_at):
            self._timers_changed.set()

    def _notify(self, ready: Ready) -> None:
        if ready.reads or ready.reads_failed:
            self._reads.notify(ready)
        if ready.leading is not None and ready.leading != self.leading.value:
            if not ready.leading:
                self.led_upto = self._core.leader.next_seq - 1
            self.leading.value = ready.leading
        if ready.decided:
            for seq, _ in ready.decided:
                event = self._waiters.pop(seq, None)
                if event is not None:
                    event.set()
        if ready.forgotten:
            low = self._core.min()
            for seq in [s for s in self._waiters if s < low]:
                self._waiters.pop(seq).set()

    def _after_sync(self, ready: Ready) -> None:
        self._core.advance(ready, trio.current_time())
        if ready.voting is not None:
            self.voting.value = self._core.voting
        nursery = self._nursery
        if nursery is None:
            return
        for envelope in ready.messages:
            nursery.start_soon(self._send, envelope)
        self._reschedule()

    async def _send(self, envelope: Envelope) -> None:
        now = trio.current_time
        if envelope.dst == self.me:
            # Our own acceptor, called directly: same durability rule as a remote one.
            request_ready = self._core.on_request(envelope.msg, now())
            self._apply_no_queue(request_ready)
            if request_ready.must_sync:
                await self._sync()
            reply = request_ready.reply
            assert reply is not None
            self._apply(self._core.on_reply(envelope, reply, now()))
            return
        reply_msg = await call_peer(self._transport, envelope)
        if reply_msg is None:
            self._apply(self._core.on_unreachable(envelope, now()))
        else:
            self._apply(self._core.on_reply(envelope, reply_msg, now()))

    def _apply_no_queue(self, ready: Ready) -> None:
        """Like `_apply` for a request's Ready whose sync the caller awaits itself."""
        for record in ready.records:
            self._storage.append(record)
        self._notify(ready)
        if ready.messages or ready.voting is not None or ready.advertise_done is not None:
            self._outbox.append(
                Ready(
                    must_sync=ready.must_sync,
                    messages=ready.messages,
                    voting=ready.voting,
                    advertise_done=ready.advertise_done,
                )
            )
            self._outbox_ready.set()
        self._reschedule()

    async def _sync(self) -> None:
        try:
            await self._storage.sync()
        except (trio.Cancelled, PaxosStorageError):
            raise
        except Exception as exc:
            raise PaxosStorageError(f"journal sync failed: {exc!r}") from exc

    async def _handle(self, args: dict[str, Any], context: Any) -> dict[str, Any]:
        """One "paxos.*" request from a peer: reply only once its records are durable.

        Raises:
            PaxosProtocolError: the request does not parse, was sent under another method,
                comes from anyone but the peer it names, or names an instance too far ahead;
                nothing was changed or journalled.
        """
        msg = from_wire(args, expect=REQUEST_TYPES)
        request: Request = msg  # type: ignore[assignment]
        method = getattr(context, "method", None)
        if method is not None and method != method_for(request):
            raise PaxosProtocolError(f"{request.KIND} sent as {method}")
        self._senders.check(request, context)
        ready = self._core.on_request(request, trio.current_time())
        self._apply_no_queue(ready)
        if ready.must_sync:
            await self._sync()
        assert ready.reply is not None
        return ready.reply.to_wire()
