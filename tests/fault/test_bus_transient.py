"""The database or a downstream failing is not the event's fault: no dead letter.

Only a failure of the handler's own logic counts as a delivery. A locked database, a
dropped connection or an unavailable service is waited out with backoff; the entry stays
pending, its delivery count does not grow, and the event is applied after recovery.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy.exc import OperationalError

from services.platform import outbox
from services.platform.bus import Bus, dead_letter_stream, stream_name
from services.platform.db import Database, DatabaseBusy, Transaction
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope
from tests import busapp
from tests.support.redis import unique


async def _values(db: Database) -> list[str]:
    return await busapp.effect_values(db)


async def test_a_handler_whose_database_is_locked_is_retried_without_counting_deliveries(
    db: Database, bus: Bus
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    effect = busapp.effect_handler(group)
    attempts: list[str] = []

    async def locked_for_a_while(tx: Transaction, envelope: Envelope) -> None:
        attempts.append(envelope.event_id)
        if len(attempts) <= 8:  # far more than max_deliveries
            raise DatabaseBusy()  # what db.write() raises when a lock outlasts its bound
        await effect(tx, envelope)

    metrics = Metrics("fulfillment")
    items = [outbox.envelope(StringValue(value=f"v{i}"), "agg-1") for i in range(3)]
    await bus.publish(stream, items)
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        locked_for_a_while,
        max_deliveries=2,
        block_ms=50,
        metrics=metrics,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _applied(db, 3), timeout=15.0)
    finally:
        await consumer.stop()

    assert await _values(db) == ["v0", "v1", "v2"]  # in order, each once
    assert await bus.client.xlen(dead_letter_stream(group)) == 0
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0
    failures = metrics.registry.get_sample_value(
        "emporium_event_handler_failures_total", {"group": group, "event_type": busapp.EVENT_TYPE}
    )
    assert failures is None  # no delivery was counted as failed
    transient = metrics.registry.get_sample_value(
        "emporium_consumer_transient_failures_total", {"group": group}
    )
    assert transient is not None
    assert transient >= 8


async def test_a_sqlite_file_locked_by_another_process_delays_events_but_dead_letters_none(
    tmp: Path, bus: Bus
) -> None:
    path = tmp / "locked.db"
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    async with busapp.database(f"sqlite+aiosqlite:///{path}") as db:
        # Another process takes the write lock and keeps it past the busy timeout.
        holder = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLD_LOCK,
            str(path),
            "12",
            stdout=asyncio.subprocess.PIPE,
        )
        await busapp.expect_line(holder, "LOCKED")
        items = [outbox.envelope(StringValue(value=f"v{i}"), f"agg-{i}") for i in range(5)]
        await bus.publish(stream, items)
        consumer = busapp.consumer(
            db,
            bus,
            group,
            stream,
            busapp.effect_handler(group),
            max_deliveries=1,
            block_ms=50,
        )
        await consumer.start()
        try:
            await busapp.eventually(lambda: _applied(db, 5), timeout=40.0)
        finally:
            await consumer.stop()
            await busapp.kill(holder)

        assert sorted(await _values(db)) == [f"v{i}" for i in range(5)]
    assert await bus.client.xlen(dead_letter_stream(group)) == 0
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0


_HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


async def _applied(db: Database, count: int) -> bool:
    try:
        return len(await _values(db)) >= count
    except OperationalError:  # the test's own look is locked out too, meanwhile
        return False
