"""Where ids, nonces and random seeds come from: the system's CSPRNG, or one seeded source
per Trio run.

Rules kept here:
- Server and client code draws handshake nonces, boot, proposer, session and transfer ids,
  and the seeds of its own `random.Random`s from here, never from `os.urandom`, `secrets` or
  an unseeded `random.Random`. A deterministic simulation calls `seed_run` at the start of
  its `trio.run`, and every draw of that run then comes, in order, from one seeded source:
  the same seed gives the same ids and nonces, hence the same run.
- Outside a seeded run these are `secrets`' functions: nonces stay unpredictable. Only test
  harnesses seed a run (a predictable HMAC nonce is harmless only on a simulated network).
- The source is a `trio.lowlevel.RunVar`: it belongs to one run and dies with it, so a seeded
  simulation never leaks into a later run in the same process.
"""

from __future__ import annotations

import random
import secrets

import trio

_SOURCE: trio.lowlevel.RunVar[random.Random] = trio.lowlevel.RunVar("diskv_entropy")


def seed_run(seed: int | str) -> None:
    """Draw everything in the current Trio run from `random.Random(seed)` (tests only).

    Raises:
        RuntimeError: called outside a Trio run.
    """
    _SOURCE.set(random.Random(seed))


def _seeded() -> random.Random | None:
    try:
        return _SOURCE.get()
    except (LookupError, RuntimeError):  # never seeded, or not in a Trio run
        return None


def token_bytes(count: int) -> bytes:
    """`count` random bytes (a nonce)."""
    source = _seeded()
    return secrets.token_bytes(count) if source is None else source.randbytes(count)


def token_hex(count: int) -> str:
    """`count` random bytes as 2 * `count` hex digits (an id)."""
    return token_bytes(count).hex()


def randbits(bits: int) -> int:
    """A random non-negative integer of at most `bits` bits."""
    source = _seeded()
    return secrets.randbits(bits) if source is None else source.getrandbits(bits)


def new_random() -> random.Random:
    """A `random.Random` of its own (back-off, timeouts), seeded from this source."""
    return random.Random(randbits(64))
