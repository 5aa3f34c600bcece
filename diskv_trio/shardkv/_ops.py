"""Shardkv ops as typed records, built from validated fields before they are proposed.

Rules kept here:
- Every op a replica proposes (client get/put/append, and its own reconfig, install, drop
  and dropped_ack) is one of these records and reaches the log as its `to_log()`: only the
  fields the state machine reads, typed and bounded; nothing else a caller or another
  group sent is copied into the log.
- Each builder either returns a record or raises `ValueError` naming the bad field; it
  never raises anything else, whatever shape its input has.
- Bounds: keys up to `KEY_BYTES_MAX` and values up to `VALUE_BYTES_MAX` (UTF-8), client ids
  1..`CLIENT_CHARS_MAX` characters, sequence and config numbers 0..`NUMBER_MAX`, shards in
  0..SHARD_COUNT-1; pulled shard data must lie in its shard (`key_to_shard`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..shardmaster import SHARD_COUNT, Config, is_int
from ._keys import key_to_shard

KEY_BYTES_MAX = 4096
"""Longest key accepted: keys live in memory and in every snapshot."""

VALUE_BYTES_MAX = 16 * 1024 * 1024
"""Largest value accepted: it travels in one frame and one log entry."""

CLIENT_CHARS_MAX = 64
"""Longest client id: each one is kept in a duplicate table per shard it wrote to."""

NUMBER_MAX = 2**63 - 1
"""Largest sequence or config number: one CBOR uint, never a bignum (the wire refuses those,
so a log entry holding one would decode differently at the proposer and at its peers)."""

CLIENT_OPS = ("get", "put", "append")


def _text(value: object, name: str, bytes_max: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > bytes_max or len(value.encode("utf-8", "surrogatepass")) > bytes_max:
        raise ValueError(f"{name} longer than {bytes_max} bytes")
    return value


def _number(value: object, name: str) -> int:
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    assert isinstance(value, int)
    if not 0 <= value <= NUMBER_MAX:
        raise ValueError(f"{name} must be in 0..{NUMBER_MAX}, got {value}")
    return value


def _shard(value: object) -> int:
    if not is_int(value):
        raise ValueError(f"shard must be an integer, got {type(value).__name__}")
    assert isinstance(value, int)
    if not 0 <= value < SHARD_COUNT:
        raise ValueError(f"shard must be in 0..{SHARD_COUNT - 1}, got {value}")
    return value


def _client(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= CLIENT_CHARS_MAX:
        raise ValueError(
            f"client must be a non-empty string of at most {CLIENT_CHARS_MAX} characters"
        )
    return value


@dataclass(frozen=True, slots=True)
class ClientOp:
    """A get (value, client and seq None) or a put/append from client `client`, number `seq`."""

    name: str
    key: str
    value: str | None = None
    client: str | None = None
    seq: int | None = None

    def to_log(self) -> dict[str, Any]:
        op: dict[str, Any] = {"op": self.name, "key": self.key}
        if self.name != "get":
            op |= {"value": self.value, "client": self.client, "seq": self.seq}
        return op


@dataclass(frozen=True, slots=True)
class ReconfigOp:
    """Move to `config` (the next one)."""

    config: Config

    def to_log(self) -> dict[str, Any]:
        return {"op": "reconfig", "config": self.config.to_wire()}


@dataclass(frozen=True, slots=True)
class InstallOp:
    """Install `shard`'s data and duplicate table, pulled for config `config_num`."""

    config_num: int
    shard: int
    data: Mapping[str, str] = field(default_factory=dict)
    dedup: Mapping[str, int] = field(default_factory=dict)

    def to_log(self) -> dict[str, Any]:
        return {
            "op": "install",
            "config_num": self.config_num,
            "shard": self.shard,
            "data": dict(self.data),
            "dedup": dict(self.dedup),
        }


@dataclass(frozen=True, slots=True)
class ShardRefOp:
    """``drop`` (delete handoff ``(config_num, shard)``) or ``dropped_ack`` (stop asking)."""

    name: str
    config_num: int
    shard: int

    def to_log(self) -> dict[str, Any]:
        return {"op": self.name, "config_num": self.config_num, "shard": self.shard}


def client_op(args: object) -> ClientOp:
    """The op for a client's ``kv.op`` request.

    Raises:
        ValueError: unknown op name, or a field missing, mistyped or too large.
    """
    if not isinstance(args, Mapping):
        raise ValueError(f"arguments must be a map, got {type(args).__name__}")
    name = args.get("op")
    if not isinstance(name, str) or name not in CLIENT_OPS:
        raise ValueError(f"op must be one of {', '.join(CLIENT_OPS)}, got {name!r:.80}")
    key = _text(args.get("key"), "key", KEY_BYTES_MAX)
    if name == "get":
        return ClientOp(name, key)
    value = _text(args.get("value"), "value", VALUE_BYTES_MAX)
    return ClientOp(name, key, value, _client(args.get("client")), _number(args.get("seq"), "seq"))


def shard_ref_op(name: str, args: object) -> ShardRefOp:
    """A ``drop`` or ``dropped_ack`` op for ``(args["config_num"], args["shard"])``.

    Raises:
        ValueError: the numbers are missing, mistyped or out of range.
    """
    assert name in ("drop", "dropped_ack")
    if not isinstance(args, Mapping):
        raise ValueError(f"arguments must be a map, got {type(args).__name__}")
    return ShardRefOp(
        name, _number(args.get("config_num"), "config_num"), _shard(args.get("shard"))
    )


def install_op(config_num: int, shard: int, reply: object) -> InstallOp:
    """The install op for a shard pulled from its previous owner (`reply` is its answer).

    Raises:
        ValueError: the reply is not a map of bounded string data in `shard` and a
            duplicate table of bounded client ids and sequence numbers.
    """
    config_num = _number(config_num, "config_num")
    shard = _shard(shard)
    if not isinstance(reply, Mapping):
        raise ValueError(f"pull reply must be a map, got {type(reply).__name__}")
    data, dedup = reply.get("data", {}), reply.get("dedup", {})
    if not isinstance(data, Mapping) or not isinstance(dedup, Mapping):
        raise ValueError("pull reply: data and dedup must be maps")
    checked_data: dict[str, str] = {}
    for key, value in data.items():
        checked_key = _text(key, "pulled key", KEY_BYTES_MAX)
        if key_to_shard(checked_key) != shard:
            raise ValueError(f"pulled key {checked_key!r:.80} is not in shard {shard}")
        checked_data[checked_key] = _text(value, "pulled value", VALUE_BYTES_MAX)
    checked_dedup = {_client(client): _number(seq, "pulled seq") for client, seq in dedup.items()}
    return InstallOp(config_num, shard, checked_data, checked_dedup)
