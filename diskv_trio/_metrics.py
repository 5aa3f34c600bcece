"""Prometheus metrics of one server process: the one home of every metric object.

Rules kept here:
- Each metric is defined here once, in prometheus-client's default registry (one server per
  process, so one set per server). Layers import the object they update; an update is a
  locked add, cheap and never raising, so hooks are one line where the event happens.
- Label values come from small fixed sets (op kinds, reply codes, refusal reasons), never
  keys or addresses, so the number of series stays bounded.
- State a Trio task owns (recovery, the NOSPACE alarm, the applied index) is read at scrape
  time by callbacks (`watch_node`) instead of being copied at every change; each callback
  reads one attribute.
- `serve_metrics` runs prometheus-client's own HTTP server in a daemon thread, on
  127.0.0.1 by default. Why not a Trio task: the library's server is the maintained HTTP
  parser (a hand-made one on the event loop would be new code facing the network), a slow
  scraper then never holds the loop, and the only cross-thread reads are the callbacks' single
  attributes. The thread is shut down with the server's run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from diskv_trio.rsm import ReplicaNode

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Op and sync latencies: from a cached local sync (sub-millisecond) to a retried proposal."""

SNAPSHOT_BYTES_BUCKETS = tuple(float(1024 * 4**i) for i in range(11))  # 1 KiB .. 1 GiB
"""Snapshot sizes, from an empty group's to a full server's."""

OPS = Counter("diskv_ops", "Client ops answered, by kind and result (a reply code).", ["kind", "result"])
OP_SECONDS = Histogram("diskv_op_seconds", "Time to answer a client op.", ["kind"], buckets=LATENCY_BUCKETS_S)
PAXOS_INSTANCES_APPLIED = Gauge("diskv_paxos_instances_applied", "Paxos instances decided and applied, in order.")
JOURNAL_APPENDS = Counter("diskv_journal_appends", "Records appended to the journal.")
JOURNAL_APPEND_BYTES = Counter("diskv_journal_append_bytes", "Bytes of records appended to the journal.")
JOURNAL_SYNCS = Counter("diskv_journal_syncs", "fdatasyncs of the journal (one covers every waiting caller).")
JOURNAL_SYNC_SECONDS = Histogram(
    "diskv_journal_sync_seconds", "Time a caller waits for its records to be durable.", buckets=LATENCY_BUCKETS_S
)
SNAPSHOT_BYTES = Histogram("diskv_snapshot_bytes", "Size of each snapshot written.", buckets=SNAPSHOT_BYTES_BUCKETS)
SNAPSHOT_SECONDS = Histogram("diskv_snapshot_seconds", "Time to write each snapshot.", buckets=LATENCY_BUCKETS_S)
CONNECTIONS_OPEN = Gauge("diskv_connections_open", "Inbound connections open (any role, handshake included).")
CONNECTIONS_REFUSED = Counter("diskv_connections_refused", "Inbound connections refused or closed, by reason.", ["reason"])
RECOVERING = Gauge("diskv_recovering", "1 while this replica recovers from a lost disk, else 0.")
NOSPACE_ALARM = Gauge("diskv_nospace_alarm", "1 while the disk-full alarm is raised, else 0.")

REFUSAL_REASONS = ("too many connections", "too many client connections", "handshake", "protocol", "slow reader")
"""The `CONNECTIONS_REFUSED` reasons; each is pre-created so a scrape shows it at 0."""

for _reason in REFUSAL_REASONS:
    CONNECTIONS_REFUSED.labels(_reason)


def watch_node(node: ReplicaNode) -> None:
    """Read `node`'s recovery state, alarm and applied index at each scrape."""
    RECOVERING.set_function(lambda: 1.0 if node.recovering else 0.0)
    NOSPACE_ALARM.set_function(lambda: 1.0 if node.storage is not None and node.storage.alarm.active else 0.0)
    PAXOS_INSTANCES_APPLIED.set_function(lambda: float(node.rsm.applied) if node.rsm is not None else 0.0)


@contextmanager
def serve_metrics(port: int, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve the metrics over HTTP on `host`:`port` (0: any free port) until the block exits.

    Yields:
        The bound port.
    Raises:
        OSError: the port cannot be bound.
    """
    server, thread = start_http_server(port, addr=host)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        assert isinstance(thread, threading.Thread)
        thread.join(timeout=5)
