"""Handing a shard on when the group that should have taken it over never did.

Rules kept here:
- **One grant per hand-off.** Before a group pulls hand-off ``(config_num, shard)``, the
  holder agrees in its own log on a `Grant` to that puller: its gid and the config it
  installs the shard at. A request for another group or config is refused, naming the
  grant; a retry of the same grant is answered again. The grant outlives the hand-off: once
  it is dropped, a puller asking for it is still refused with the grant's name, so a group
  a reclaim skipped learns that it was skipped and forfeits instead of waiting for ever.
- **Reclaim.** A puller whose previous owner never answers walks the config chain back to the
  last group that held the shard (`reclaim_sources`) and asks it for that older hand-off. The
  holder grants it only if it never granted it: then the next owner never installed the
  shard (install follows a grant), so it never served it, never moved past that config with
  it and never handed it on; by induction neither did any owner after it. The hand-off is
  therefore the shard's latest state, and at most one group ever holds a copy that serves.
- **The walk stops at an owner 0**: the shard was created empty after it, and a group after
  that may have served writes that no older hand-off has.
- **Forfeit.** A group waiting at config ``c`` whose source was granted to a config after ``c``
  was skipped: the shard went on without it. It marks the shard forfeited (owned, never
  served, handed on to nobody), so it can move past ``c`` instead of waiting for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..kvproto import check_number, is_int
from ..shardmaster import Config, check_gid, check_servers

RECLAIM_CONFIGS_MAX = 64
"""How far back (in configs) a puller looks for the last holder: a bound on shardmaster
queries per stuck shard; a chain of never-served owners longer than this is not expected."""


class Grant(NamedTuple):
    """Hand-off given to group `gid`, which installs it at config `config_num`."""

    gid: int
    config_num: int


class Source(NamedTuple):
    """Where an installed shard came from: group `gid` (at `servers`), hand-off `config_num`."""

    config_num: int
    gid: int
    servers: tuple[str, ...]


def reclaim_sources(shard: int, configs: Sequence[Config]) -> list[Source]:
    """The older holders of `shard` to ask, newest first.

    Args:
        configs: consecutive configs, newest first, starting with the puller's previous
            config (whose owner is the one that does not answer).

    Returns:
        Each config in the chain where the owner changes next: its owner and servers. Ends at
        config 0 or before a config whose owner is 0.
    """
    sources: list[Source] = []
    for newer, older in zip(configs, configs[1:], strict=False):
        assert older.num == newer.num - 1
        owner = older.shards[shard]
        if owner == 0:
            break
        if owner != newer.shards[shard]:
            sources.append(Source(older.num, owner, older.groups[owner]))
    return sources


def grant_request(args: object) -> tuple[int, int, Grant]:
    """``(config_num, shard, grant)`` from a pull request's arguments.

    Raises:
        ValueError: a field is missing, mistyped or out of range.
    """
    if not isinstance(args, Mapping):
        raise ValueError(f"arguments must be a map, got {type(args).__name__}")
    config_num = check_number(args.get("config_num"), "config_num")
    shard = check_number(args.get("shard"), "shard")
    grant = Grant(check_gid(args.get("gid"), "pull"), check_number(args.get("to_config"), "to_config"))
    if grant.config_num <= config_num:
        raise ValueError(f"to_config {grant.config_num} must come after config {config_num}")
    return config_num, shard, grant


def granted_to(reply: Mapping[str, Any]) -> Grant | None:
    """The grant a refusal names, or None if `reply` is not a well-formed refusal."""
    value = reply.get("granted_to")
    if not (isinstance(value, list | tuple) and len(value) == 2 and all(is_int(v) for v in value)):
        return None
    return Grant(int(value[0]), int(value[1]))


def source_from_wire(value: object) -> Source:
    """A `Source` from its log form ``[config_num, gid, servers]``.

    Raises:
        ValueError: malformed.
    """
    if not (isinstance(value, list | tuple) and len(value) == 3):
        raise ValueError("source must be [config_num, gid, servers]")
    return Source(check_number(value[0], "source config_num"), check_gid(value[1], "source"), check_servers(value[2], "source"))
