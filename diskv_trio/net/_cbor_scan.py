"""Count the data items of a CBOR body before decoding it.

cbor2 builds every item it reads, so a 16 MiB frame of one-byte empty arrays becomes tens of
millions of Python objects. Walking only the item headers is cheap, stops at the first item
over the bound, and skips string payloads by their length, so a legal request (a few items
and one large string) is checked in microseconds whatever its size.
"""

from __future__ import annotations

from ._errors import ProtocolError

_BREAK_OR_INDEFINITE = 31


def check_item_count(body: bytes, items_max: int) -> None:
    """Raise `ProtocolError` if `body` holds more than `items_max` CBOR items, an
    indefinite length, or a header that runs past the end (cbor2 reports other errors)."""
    pending = 1  # items still to read at the current position
    count = 0
    pos = 0
    end = len(body)
    while pending:
        if pos >= end:
            return  # truncated: cbor2 gives the precise error
        initial = body[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if info < 24:
            argument = info
        elif info <= 27:
            width = 1 << (info - 24)
            if pos + width > end:
                return
            argument = int.from_bytes(body[pos : pos + width], "big")
            pos += width
        elif info == _BREAK_OR_INDEFINITE and major != 7:
            raise ProtocolError("indefinite-length CBOR items are not accepted")
        else:
            argument = 0
        pending -= 1
        count += 1
        if count > items_max:
            raise ProtocolError(f"frame holds more than {items_max} CBOR items")
        if major in (2, 3):
            pos += argument
        elif major == 4:
            pending += argument
        elif major == 5:
            pending += 2 * argument
        elif major == 6:
            pending += 1
        if pending > items_max:
            raise ProtocolError(f"frame announces more than {items_max} CBOR items")
