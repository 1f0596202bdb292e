"""Time as the services store it: integer microseconds since the epoch (UTC).

One definition of "now" and of the microseconds ↔ ``google.protobuf.Timestamp`` mapping,
so every service writes and answers times the same way.
"""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp


def now_us() -> int:
    """The current wall-clock time in microseconds since the epoch."""
    return time.time_ns() // 1_000


def timestamp(us: int) -> Timestamp:
    """A protobuf Timestamp for ``us`` microseconds since the epoch."""
    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


def optional_timestamp(us: int | None) -> Timestamp | None:
    """:func:`timestamp` of ``us``, or ``None`` (the message field left unset) for ``None``."""
    return None if us is None else timestamp(us)


def from_timestamp(stamp: Timestamp) -> int:
    """Microseconds since the epoch of a protobuf Timestamp."""
    return int(stamp.ToMicroseconds())
