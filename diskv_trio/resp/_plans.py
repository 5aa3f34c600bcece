"""Store commands as plans: each yields batches of key/value calls and returns its reply.

Rules kept here:
- A plan is a generator: it yields a tuple of `KvCall`s (run concurrently by the driver),
  is sent back their results in order (`bytes | None` for a get, None for a put, a bool for
  a compare-and-set or a delete) and finally returns the command's `Reply`. No I/O here,
  so a dict-backed fake drives every plan in the tests.
- Each single-key command is linearizable: its reply follows from one store op (SET NX,
  DEL, GET) or from a read followed by a compare-and-set that succeeded (SET XX, SET GET,
  APPEND), retried while another client wrote in between.
- Multi-key DEL, EXISTS and MGET run one op per key, concurrently: not one atomic step.
- Keys were checked against `KEY_BYTES_MAX` before a plan starts, so no call of a
  multi-key command is refused after another has been applied.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Literal

from ._limits import APPEND_VALUE_BYTES_MAX, CAS_ATTEMPTS_MAX
from ._replies import NULL, OK, Array, Bulk, Error, Integer, Reply, error


@dataclass(frozen=True, slots=True)
class KvGet:
    key: bytes


@dataclass(frozen=True, slots=True)
class KvPut:
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class KvCas:
    key: bytes
    expected: bytes | None
    new: bytes


@dataclass(frozen=True, slots=True)
class KvDelete:
    key: bytes


KvCall = KvGet | KvPut | KvCas | KvDelete
KvResult = bytes | bool | None
Plan = Generator[tuple[KvCall, ...], list[KvResult], Reply]

Condition = Literal["NX", "XX"] | None


def _changing(name: str) -> Error:
    return error("TRYAGAIN", f"{name}: the key kept changing ({CAS_ATTEMPTS_MAX} attempts); retry")


def _value_or_null(value: KvResult) -> Reply:
    assert value is None or isinstance(value, bytes)
    return NULL if value is None else Bulk(value)


def get_plan(key: bytes) -> Plan:
    (found,) = yield (KvGet(key),)
    return _value_or_null(found)


def strlen_plan(key: bytes) -> Plan:
    (found,) = yield (KvGet(key),)
    assert found is None or isinstance(found, bytes)
    return Integer(0 if found is None else len(found))


def set_plan(key: bytes, value: bytes, condition: Condition, get_old: bool) -> Plan:
    """SET with NX/XX/GET: a put; NX alone one compare-and-set; else read, then compare-and-set."""
    if condition is None and not get_old:
        yield (KvPut(key, value),)
        return OK
    if condition == "NX" and not get_old:
        (written,) = yield (KvCas(key, None, value),)
        return OK if written else NULL
    for _ in range(CAS_ATTEMPTS_MAX):
        (old,) = yield (KvGet(key),)
        assert old is None or isinstance(old, bytes)
        if (condition == "NX" and old is not None) or (condition == "XX" and old is None):
            return _value_or_null(old) if get_old else NULL
        (written,) = yield (KvCas(key, old, value),)
        if written:
            return _value_or_null(old) if get_old else OK
    return _changing("SET")


def append_plan(key: bytes, value: bytes) -> Plan:
    """APPEND through read and compare-and-set, so the new length it answers is exact."""
    for _ in range(CAS_ATTEMPTS_MAX):
        (old,) = yield (KvGet(key),)
        assert old is None or isinstance(old, bytes)
        new = (old or b"") + value
        if len(new) > APPEND_VALUE_BYTES_MAX:
            return error("ERR", f"APPEND would make a value of {len(new)} bytes; the limit is {APPEND_VALUE_BYTES_MAX}")
        (written,) = yield (KvCas(key, old, new),)
        if written:
            return Integer(len(new))
    return _changing("APPEND")


def delete_plan(keys: Sequence[bytes]) -> Plan:
    existed = yield tuple(KvDelete(key) for key in keys)
    return Integer(sum(1 for flag in existed if flag))


def exists_plan(keys: Sequence[bytes]) -> Plan:
    found = yield tuple(KvGet(key) for key in keys)
    return Integer(sum(1 for value in found if value is not None))


def mget_plan(keys: Sequence[bytes]) -> Plan:
    found = yield tuple(KvGet(key) for key in keys)
    return Array(tuple(_value_or_null(value) for value in found))
