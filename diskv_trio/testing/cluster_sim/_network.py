"""A simulated network: in-memory streams between named hosts, with seeded delay, loss,
duplication, reordering and partitions.

Rules kept here:
- Every host reaches the network through its own `HostTransport` (a `diskv_trio.net`
  `Transport`), so the network knows who sends what and a partition can cut a host off.
- A write (`send_all`) travels as a unit. In the RPC layer every write holds whole frames,
  so the faults act on messages, as on a lossy datagram network: a write may be lost,
  delivered twice, or overtake earlier ones. TCP would hide those; what it cannot hide is
  modelled as TCP shows it: a connection across a partition stalls, and data that reaches
  an end that was closed (its process died) is answered with a reset, so the sender finds
  out at its next write or read.
- A connect to an address nobody listens at is refused after a round trip; across a
  partition it hangs until the caller gives up, as a SYN to an unreachable host does.
- Every delivery goes through one heap ordered by (time, sequence number), drained by one
  task, at instants of the 1 ms grid (`_grid`); all randomness comes from the network's own
  seeded source, drawn in event order.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import random
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from diskv_trio.net import Address, Listening

from ._grid import on_grid
from ._streams import Pipe, SimListener, SimStream
from ._trace import Trace

SYN_RETRY_S = 1.0
"""A lost SYN costs the connect this much (Linux's first SYN retransmission)."""

REORDER_SPREAD = 4.0
"""A reordered write is held up to this many times the link's delay plus jitter."""


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """How writes from one host to another travel.

    Attributes:
        delay_s: one-way delay of every write.
        jitter_s: up to this much more, drawn per write.
        loss: probability that a write is lost.
        duplication: probability that a write is delivered twice.
        reordering: probability that a write is held back and may be overtaken.
    """

    delay_s: float = 0.0005
    jitter_s: float = 0.0005
    loss: float = 0.0
    duplication: float = 0.0
    reordering: float = 0.0

    def __post_init__(self) -> None:
        if self.delay_s < 0 or self.jitter_s < 0:
            raise ValueError("delay and jitter must not be negative")
        for name in ("loss", "duplication", "reordering"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")


HEALTHY = LinkFaults()
"""A LAN: half a millisecond each way, up to as much again of jitter, nothing lost."""


class SimNetwork:
    """The hosts, their listeners and the links between them (see the module docstring).

    Args:
        rng: the network's seeded random source.
        trace: where every connect, delivery, loss and reset is recorded.
    """

    def __init__(self, rng: random.Random, trace: Trace) -> None:
        self._rng = rng
        self._trace = trace
        self._host_of: dict[str, str] = {}  # address -> host
        self._listeners: dict[str, SimListener] = {}
        self._streams: dict[str, dict[int, SimStream]] = {}  # host -> connection -> its end
        self._down: set[str] = set()
        self._side: dict[str, int] = {}  # host -> partition side; hosts absent are on side 0
        self._cuts: set[tuple[str, str]] = set()  # (src, dst) pairs cut besides the sides
        self._links: dict[tuple[str, str], LinkFaults] = {}
        self._heap: list[tuple[float, int, str, Pipe, bytes]] = []
        self._order = itertools.count()
        self._connections = itertools.count(1)
        self._wake = trio.Event()
        self.writes_sent = 0
        self.writes_lost = 0

    # ---- topology -------------------------------------------------------------------------

    def add_host(self, host: str, *addresses: str) -> HostTransport:
        """Make `host` known, owning `addresses`; returns its transport."""
        self._streams.setdefault(host, {})
        for address in addresses:
            self._host_of[address] = host
        return HostTransport(self, host)

    def set_link(self, src: str, dst: str, faults: LinkFaults) -> None:
        """How writes from `src` to `dst` travel from now on."""
        self._links[(src, dst)] = faults
        self._trace.event("link", src, dst, faults)

    def heal_links(self) -> None:
        """Every link healthy again."""
        self._links.clear()
        self._trace.event("links-healed")

    def partition(self, *sides: set[str]) -> None:
        """Cut the network into `sides`; hosts named in no side form one more side together."""
        self._side = {host: number for number, side in enumerate(sides, 1) for host in side}
        self._trace.event("partition", [sorted(side) for side in sides])

    def cut(self, these: set[str], those: set[str]) -> None:
        """Cut every link between a host of `these` and one of `those`, both ways."""
        self._cuts |= {(a, b) for a in these for b in those} | {
            (b, a) for a in these for b in those
        }
        self._trace.event("cut", sorted(these), sorted(those))

    def heal_partition(self) -> None:
        """Undo `partition` and every `cut`."""
        self._side = {}
        self._cuts = set()
        self._trace.event("partition-healed")

    def blocked(self, src: str, dst: str) -> bool:
        return self._side.get(src, 0) != self._side.get(dst, 0) or (src, dst) in self._cuts

    def host_down(self, host: str) -> None:
        """The host's process died: its listeners go, its connections close."""
        self._down.add(host)
        for listener in [each for each in self._listeners.values() if each.host == host]:
            listener.close_now()
        for stream in list(self._streams.get(host, {}).values()):
            stream.close_now()
        self._trace.event("host-down", host)

    def host_up(self, host: str) -> None:
        self._down.discard(host)
        self._trace.event("host-up", host)

    # ---- what the transports call -----------------------------------------------------------

    def _link(self, src: str, dst: str) -> LinkFaults:
        return self._links.get((src, dst), HEALTHY)

    async def connect(self, src: str, address: Address) -> SimStream:
        key = str(address)
        dst = self._host_of.get(key)
        if dst is None:
            raise OSError(errno.EHOSTUNREACH, f"no host has address {key}")
        faults, back = self._link(src, dst), self._link(dst, src)
        round_trip = (
            faults.delay_s + back.delay_s + self._rng.uniform(0, faults.jitter_s + back.jitter_s)
        )
        if self._rng.random() < faults.loss:
            round_trip += SYN_RETRY_S
        if self.blocked(src, dst):
            self._trace.event("connect-stalled", src, key)
            await trio.sleep_forever()
        await trio.sleep(round_trip)
        listener = self._listeners.get(key)
        if self.blocked(src, dst) or src in self._down:
            await trio.sleep_forever()
        if listener is None or listener.closed:
            self._trace.event("connect-refused", src, key)
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"connection refused by {key}")
        number = next(self._connections)
        to_server, to_client = Pipe(number, src, dst), Pipe(number, dst, src)
        client = SimStream(self, src, to_client, to_server)
        server = SimStream(self, dst, to_server, to_client)
        self._streams[src][number] = client
        self._streams[dst][number] = server
        listener.push(server)
        self._trace.event("connect", number, src, key)
        return client

    def bind(self, host: str, address: Address) -> SimListener:
        key = str(address)
        if self._host_of.get(key) != host:
            raise OSError(errno.EADDRNOTAVAIL, f"{host} has no address {key}")
        if key in self._listeners:
            raise OSError(errno.EADDRINUSE, f"{key} is in use")
        listener = SimListener(self, host, key)
        self._listeners[key] = listener
        self._trace.event("listen", host, key)
        return listener

    def unbind(self, listener: SimListener) -> None:
        if self._listeners.get(listener.address) is listener:
            del self._listeners[listener.address]
            self._trace.event("unlisten", listener.host, listener.address)

    def forget(self, stream: SimStream) -> None:
        self._streams.get(stream.host, {}).pop(stream._incoming.connection, None)

    def transmit(self, pipe: Pipe, data: bytes) -> None:
        """Send one write along `pipe`, with the link's faults."""
        self.writes_sent += 1
        if self.blocked(pipe.src, pipe.dst) or pipe.src in self._down:
            self.writes_lost += 1
            self._trace.event("cut", pipe.connection, pipe.src, pipe.dst, len(data))
            return
        faults = self._link(pipe.src, pipe.dst)
        rng = self._rng
        if faults.loss and rng.random() < faults.loss:
            self.writes_lost += 1
            self._trace.event("lost", pipe.connection, pipe.src, pipe.dst, len(data))
            return
        now = trio.current_time()
        spread = faults.delay_s + faults.jitter_s
        due = now + faults.delay_s + rng.uniform(0, faults.jitter_s)
        if faults.reordering and rng.random() < faults.reordering:
            due += rng.uniform(0, REORDER_SPREAD * spread)
        else:
            due = max(due, pipe.last_due)
            pipe.last_due = due
        self._push(due, "data", pipe, data)
        if faults.duplication and rng.random() < faults.duplication:
            self._push(due + rng.uniform(0, spread), "data", pipe, data)

    def send_control(self, pipe: Pipe, kind: str) -> None:
        """A FIN or a reset along `pipe`: in order with the data, lost only across a cut."""
        if self.blocked(pipe.src, pipe.dst):
            return
        faults = self._link(pipe.src, pipe.dst)
        due = max(trio.current_time() + faults.delay_s, pipe.last_due)
        pipe.last_due = due
        self._push(due, kind, pipe, b"")

    def _push(self, due: float, kind: str, pipe: Pipe, data: bytes) -> None:
        due = on_grid(due)
        heapq.heappush(self._heap, (due, next(self._order), kind, pipe, data))
        self._wake.set()

    # ---- delivery ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver writes when they are due, until cancelled."""
        while True:
            self._wake = trio.Event()
            if not self._heap:
                await self._wake.wait()
                continue
            due = self._heap[0][0]
            if due > trio.current_time():
                with trio.move_on_at(due):
                    await self._wake.wait()
                continue
            while self._heap and self._heap[0][0] <= trio.current_time():
                _, _, kind, pipe, data = heapq.heappop(self._heap)
                self._deliver(kind, pipe, data)

    def _deliver(self, kind: str, pipe: Pipe, data: bytes) -> None:
        if pipe.closed:
            if kind == "data":  # the end is gone: answer with a reset
                self._trace.event("reset", pipe.connection, pipe.dst, pipe.src)
                reverse = self._reverse(pipe)
                if reverse is not None:
                    self.send_control(reverse, "reset")
            return
        if kind == "data":
            pipe.buffer += data
            self._trace.event(
                "deliver", pipe.connection, pipe.src, pipe.dst, len(data), zlib.crc32(data)
            )
        elif kind == "fin":
            pipe.eof = True
            self._trace.event("fin", pipe.connection, pipe.dst)
        else:
            pipe.reset = True
            self._trace.event("reset-received", pipe.connection, pipe.dst)
        pipe.notify()

    def _reverse(self, pipe: Pipe) -> Pipe | None:
        """The pipe carrying data the other way on the same connection, if its end lives."""
        stream = self._streams.get(pipe.src, {}).get(pipe.connection)
        return stream._incoming if stream is not None else None


class HostTransport:
    """One host's view of the network: a `diskv_trio.net.Transport`."""

    def __init__(self, network: SimNetwork, host: str) -> None:
        self._network = network
        self.host = host

    async def open_stream(self, address: Address) -> trio.abc.Stream:
        return await self._network.connect(self.host, address)

    @asynccontextmanager
    async def listen(self, address: Address) -> AsyncIterator[Listening]:
        listener = self._network.bind(self.host, address)
        try:
            yield Listening(address, [listener])
        finally:
            listener.close_now()
