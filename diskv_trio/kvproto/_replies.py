"""Reading a ``kv.op`` reply: each op's result, validated like any input from the network.

Rules kept here:
- A get's reply is ``{"err": "OK", "value": bytes}`` or ``{"err": "ErrNoKey"}``: an absent key
  is never confused with an empty value. A delete's reply carries ``"existed"``, a
  compare-and-set's ``"written"``, both booleans; put and append carry nothing more.
- A reply that does not have that shape raises `ValueError` (a server of another version).
"""

from __future__ import annotations

from collections.abc import Mapping

from ._codes import Code
from ._limits import VALUE_BYTES_MAX


def get_result(reply: Mapping[str, object]) -> bytes | None:
    """The value a get found, None for an absent key.

    Raises:
        ValueError: the reply is neither.
    """
    err = reply.get("err")
    if err == Code.NO_KEY:
        return None
    value = reply.get("value")
    if err != Code.OK or not isinstance(value, bytes) or len(value) > VALUE_BYTES_MAX:
        raise ValueError(f"malformed get reply (err {err!r:.40})")
    return value


def flag_result(reply: Mapping[str, object], name: str) -> bool:
    """The boolean `name` ("existed" or "written") of a delete's or compare-and-set's reply.

    Raises:
        ValueError: the reply lacks it.
    """
    flag = reply.get(name)
    if reply.get("err") != Code.OK or not isinstance(flag, bool):
        raise ValueError(f"malformed reply: no boolean {name!r}")
    return flag
