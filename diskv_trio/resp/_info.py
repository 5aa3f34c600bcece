"""What the gateway says about itself: INFO sections, COMMAND entries, the HELLO map.

Rules kept here:
- `GatewayFacts` is fixed at start, `GatewayStats` is counted by the driver; rendering
  takes both and `now_s`, reads no clock, and is the same for every connection.
- ``redis_version`` (and HELLO's ``version``) names the Redis version whose protocol and
  reply shapes the gateway follows, so tools that gate features on it behave; the
  gateway's own version is ``diskv_trio_version``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ._command_table import COMMANDS, CommandSpec
from ._replies import Array, Integer, Map, Reply, Simple, bulk_text

REDIS_VERSION_FOLLOWED = "7.0.0"
SECTIONS = ("server", "clients", "stats", "keyspace")


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    version: str
    process_id: int
    tcp_port: int
    started_s: float
    connections_max: int
    auth_required: bool


@dataclass(slots=True)
class GatewayStats:
    """Counters the driver keeps (one event loop, so plain ints)."""

    connections_current: int = 0
    connections_total: int = 0
    connections_rejected: int = 0
    commands_total: int = 0
    error_replies: int = 0
    protocol_errors: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    """Store calls made, by kind (get, put, cas, delete)."""
    keyspace_hits: int = 0
    keyspace_misses: int = 0


def info_text(sections: list[str], facts: GatewayFacts, stats: GatewayStats, now_s: float) -> str:
    """INFO's text for `sections` (lower-case; empty, "all", "default", "everything": all)."""
    wanted = [s for s in SECTIONS if not sections or s in sections or {"all", "default", "everything"} & set(sections)]
    uptime_s = max(0, int(now_s - facts.started_s))
    fields: dict[str, list[tuple[str, object]]] = {
        "server": [
            ("redis_version", REDIS_VERSION_FOLLOWED),
            ("diskv_trio_version", facts.version),
            ("redis_mode", "standalone"),
            ("process_id", facts.process_id),
            ("tcp_port", facts.tcp_port),
            ("uptime_in_seconds", uptime_s),
            ("uptime_in_days", uptime_s // 86400),
        ],
        "clients": [
            ("connected_clients", stats.connections_current),
            ("maxclients", facts.connections_max),
            ("auth_required", int(facts.auth_required)),
        ],
        "stats": [
            ("total_connections_received", stats.connections_total),
            ("total_commands_processed", stats.commands_total),
            ("rejected_connections", stats.connections_rejected),
            ("total_error_replies", stats.error_replies),
            ("protocol_errors", stats.protocol_errors),
            ("keyspace_hits", stats.keyspace_hits),
            ("keyspace_misses", stats.keyspace_misses),
        ],
        "keyspace": [(f"store_{kind}_calls", stats.calls[kind]) for kind in ("get", "put", "cas", "delete")],
    }
    blocks = []
    for section in wanted:
        lines = [f"# {section.capitalize()}", *(f"{name}:{value}" for name, value in fields[section])]
        blocks.append("\r\n".join(lines))
    return "\r\n\r\n".join(blocks) + "\r\n"


def command_entry(spec: CommandSpec) -> Array:
    """One COMMAND (INFO) entry: name, arity, flags, key positions, categories, tips, specs, subcommands."""
    return Array((
        bulk_text(spec.name),
        Integer(spec.arity),
        Array(tuple(Simple(flag) for flag in spec.flags)),
        Integer(spec.first_key),
        Integer(spec.last_key),
        Integer(spec.step),
        Array(()),
        Array(()),
        Array(()),
        Array(()),
    ))


def all_command_entries() -> Array:
    return Array(tuple(command_entry(spec) for spec in COMMANDS.values()))


def hello_map(facts: GatewayFacts, client_id: int, protocol: int) -> Map:
    pairs: list[tuple[Reply, Reply]] = [
        (bulk_text("server"), bulk_text("diskv-trio")),
        (bulk_text("version"), bulk_text(REDIS_VERSION_FOLLOWED)),
        (bulk_text("proto"), Integer(protocol)),
        (bulk_text("id"), Integer(client_id)),
        (bulk_text("mode"), bulk_text("standalone")),
        (bulk_text("role"), bulk_text("master")),
        (bulk_text("modules"), Array(())),
    ]
    return Map(tuple(pairs))

