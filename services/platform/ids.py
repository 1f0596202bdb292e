"""The ids the services make: one function for each kind, so every service makes them alike.

:func:`random_id` for entities (users, reservations, payments, orders, shipments): a UUID
version 4. :func:`time_ordered_id` where the order of creation matters: event ids (the
outbox's and inbox's unique indexes) and product ids (listing by id lists by creation time).
"""

from __future__ import annotations

import os
import time
import uuid


def random_id() -> str:
    """A random UUID (version 4), as text."""
    return str(uuid.uuid4())


def time_ordered_id() -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Time-ordered, so a unique index on such ids grows at its right edge: a transaction of
    many rows dirties a few index pages, where random (version 4) ids dirty one page per
    row once the index outgrows the cache.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & _UUID7_CLEAR | _UUID7_SET
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID7_CLEAR = ~(0xF << 76 | 0x3 << 62)  # the version and variant bits
_UUID7_SET = 0x7 << 76 | 0x2 << 62  # version 7, variant RFC 9562
