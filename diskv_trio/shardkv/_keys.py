"""Which shard a key belongs to (the course's `key2shard`)."""

from __future__ import annotations

from ..shardmaster import SHARD_COUNT


def key_to_shard(key: str) -> int:
    """The shard of `key`: its first character's code point modulo `SHARD_COUNT`, 0 for "".

    Every server and clerk must agree on this, so it never changes.
    """
    if not key:
        return 0
    return ord(key[0]) % SHARD_COUNT
