"""Which shard a key belongs to: the one function every client and server must agree on.

Rules kept here:
- A cluster's `Sharding` (shard count and scheme) is chosen when it is created and recorded
  in every configuration the shardmasters hand out; nobody computes a shard without it.
- ``crc32c`` (the default): CRC-32C of the key's bytes modulo the count, so keys that share a
  prefix (``user:1``, ``user:2``...) still spread over every shard.
- ``first-char``: the course's mapping, the code point of the key's first character (its
  first byte if the key is not UTF-8) modulo the count, 0 for the empty key. It exists for
  the ported course suites and for data written before `Sharding` existed; with it, every
  key that starts "user:" lands in one shard.
- A configuration's wire form without a sharding field is ``first-char`` over 10 shards:
  that is what every configuration meant before the field existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from crc32c import crc32c

from ._limits import SHARD_COUNT_MAX

Scheme = Literal["crc32c", "first-char"]
SCHEMES: tuple[Scheme, ...] = ("crc32c", "first-char")

COURSE_SHARD_COUNT = 10
"""The course's NShards, the count of `COURSE_SHARDING`."""

DEFAULT_SHARD_COUNT = 120
"""Shards of a new cluster: divisible by 2, 3, 4, 5, 6, 8, 10 and 12, so up to 12 groups
(and 15, 20, 24...) each get exactly the same number of shards."""


def _first_char(key: bytes) -> int:
    if not key:
        return 0
    for length in range(1, min(4, len(key)) + 1):
        try:
            return ord(key[:length].decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            continue
    return key[0]


@dataclass(frozen=True, slots=True)
class Sharding:
    """How keys map to shards in one cluster.

    Raises:
        ValueError: `count` not in 1..SHARD_COUNT_MAX, or an unknown `scheme`.
    """

    count: int
    scheme: Scheme = "crc32c"

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or isinstance(self.count, bool):
            raise ValueError(f"shard count must be an int, got {type(self.count).__name__}")
        if not 1 <= self.count <= SHARD_COUNT_MAX:
            raise ValueError(f"shard count must be in 1..{SHARD_COUNT_MAX}, got {self.count}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"shard scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r:.40}")

    def shard_of(self, key: bytes) -> int:
        """The shard of `key` (bytes, as stored)."""
        if self.scheme == "crc32c":
            return crc32c(key) % self.count
        return _first_char(key) % self.count

    def to_wire(self) -> dict[str, Any]:
        return {"count": self.count, "scheme": self.scheme}

    @classmethod
    def from_wire(cls, wire: object) -> Sharding:
        """A sharding from `to_wire()`; None (a field absent) is `COURSE_SHARDING`.

        Raises:
            ValueError: not a map of exactly ``count`` and ``scheme``, or bad values.
        """
        if wire is None:
            return COURSE_SHARDING
        if not isinstance(wire, Mapping) or set(wire) != {"count", "scheme"}:
            raise ValueError("sharding must be a map of count and scheme")
        return cls(wire["count"], wire["scheme"])

    def __str__(self) -> str:
        return f"{self.count} shards by {self.scheme}"


COURSE_SHARDING = Sharding(COURSE_SHARD_COUNT, "first-char")
"""The course's mapping: the ported course suites, and data from before `Sharding`."""

DEFAULT_SHARDING = Sharding(DEFAULT_SHARD_COUNT, "crc32c")
"""What `diskv cluster up` and `diskv shardmaster` use unless told otherwise."""
