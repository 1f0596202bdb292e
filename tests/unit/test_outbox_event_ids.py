"""Event ids: UUID version 7, ordered by the time they were made."""

from __future__ import annotations

import time
import uuid

from google.protobuf.wrappers_pb2 import StringValue

from services.platform import ids, outbox


def test_event_ids_are_uuids_of_version_7_carrying_their_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(ids.time_ordered_id())
    after = time.time_ns() // 1_000_000

    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_event_ids_made_later_sort_after_earlier_ones_and_never_repeat() -> None:
    earlier = [ids.time_ordered_id() for _ in range(1000)]
    time.sleep(0.002)
    later = [ids.time_ordered_id() for _ in range(1000)]

    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 2000


def test_an_envelope_gets_a_version_7_id() -> None:
    item = outbox.envelope(StringValue(value="x"), "agg-1")

    assert uuid.UUID(item.event_id).version == 7
