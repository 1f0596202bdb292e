"""One side of the bus benchmark, as its own process (a publishing service and a
consuming service are separate processes with separate databases):

    python -m benchmarks.buswork produce DATABASE_URL REDIS_URL CONTEXT OUT
    python -m benchmarks.buswork consume DATABASE_URL REDIS_URL CONTEXT OUT

Both print READY, then obey one command per line on stdin.

The producer runs the platform's :class:`OutboxRelay` (woken on commit, as in every
service). ``burst NAME N`` commits N events back to back, 100 per transaction;
``steady NAME N RATE`` commits N events at RATE per second in 5 ms ticks, one transaction
per tick. Either answers ``PUBLISHED <first commit µs> <last commit µs>`` once the relay
has published them. Rows are written with one multi-row INSERT per transaction (the rows
:func:`outbox.record` writes, without its per-row statement cost), so the producer is not
what limits the bus.

The consumer runs the platform's :class:`Consumer` (inbox, batches, acknowledgements)
with a handler that writes one effect row, and records when each effect committed.
``until N`` answers ``REACHED <count> <last effect µs>`` once N effects have committed
(or after two minutes).

``stop`` makes either write ``{...: microseconds}`` as JSON to OUT (the producer one
object of event id → commit time per NAME, the consumer event id → effect time), stop
and print DONE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from google.protobuf.wrappers_pb2 import StringValue
from sqlalchemy.ext.asyncio import AsyncSession

from services.platform import outbox
from services.platform.bus import Bus, stream_name
from services.platform.consumer import Consumer
from services.platform.db import OUTBOX_WRITTEN, Database
from services.platform.outbox import Envelope
from services.platform.relay import OutboxRelay

MIGRATIONS = Path(__file__).parent / "bus_migrations"
EVENT_TYPE = StringValue.DESCRIPTOR.full_name
PER_TRANSACTION = 100
TICK_SECONDS = 0.005

effects = sa.Table(
    "effects",
    sa.MetaData(),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("value", sa.String(64), nullable=False),
)


def _now_us() -> int:
    return time.time_ns() // 1000


def _say(word: str) -> None:
    print(word, flush=True)


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


async def _line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


class _Producer:
    def __init__(self, db: Database, context: str) -> None:
        self.db = db
        self.context = context
        self.made = 0

    async def commit(self, count: int, stamps: dict[str, int]) -> None:
        """Commits ``count`` outbox rows in one transaction and one multi-row INSERT
        (the rows :func:`outbox.record` writes, minus its per-row statement cost, so the
        producer is not what limits the bus)."""
        items = [
            outbox.envelope(StringValue(value=f"e{self.made + i}"), f"e{self.made + i}")
            for i in range(count)
        ]
        self.made += count
        rows = [
            {
                "event_id": item.event_id,
                "stream": self.context,
                "event_type": item.event_type,
                "aggregate_id": item.aggregate_id,
                "occurred_at_us": item.occurred_at_us,
                "traceparent": item.traceparent,
                "payload": item.payload,
            }
            for item in items
        ]
        async with self.db.transaction() as session:
            await session.execute(sa.insert(outbox.outbox).values(rows))
            session.info[OUTBOX_WRITTEN] = True  # what outbox.record flags: wakes the relay
        now = _now_us()
        for item in items:
            stamps[item.event_id] = now

    async def burst(self, count: int) -> dict[str, int]:
        stamps: dict[str, int] = {}
        for first in range(0, count, PER_TRANSACTION):
            await self.commit(min(PER_TRANSACTION, count - first), stamps)
        return stamps

    async def steady(self, count: int, rate: float) -> dict[str, int]:
        stamps: dict[str, int] = {}
        per_tick = max(1, round(rate * TICK_SECONDS))
        period = per_tick / rate
        start = time.perf_counter()
        sent = 0
        while sent < count:
            delay = start + (sent // per_tick) * period - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            batch = min(per_tick, count - sent)
            await self.commit(batch, stamps)
            sent += batch
        return stamps

    async def published(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while await self._unpublished() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    async def _unpublished(self) -> int:
        async with self.db.transaction() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(outbox.outbox)
                .where(outbox.outbox.c.published_at_us.is_(None))
            )
        return int(count or 0)


async def produce(url: str, redis_url: str, context: str, out: Path) -> None:
    db = Database(url, MIGRATIONS)
    await db.migrate()
    bus = Bus.from_url(redis_url)
    relay = OutboxRelay(db, bus)
    db.on_commit.append(relay.notify)  # as services.platform.publishing wires it
    await relay.start()
    producer = _Producer(db, context)
    phases: dict[str, dict[str, int]] = {}
    _say("READY")
    while (words := (await _line()).split()) and words[0] != "stop":
        if words[0] == "burst":
            stamps = await producer.burst(int(words[2]))
        else:
            stamps = await producer.steady(int(words[2]), float(words[3]))
        phases[words[1]] = stamps
        await producer.published()
        _say(f"PUBLISHED {min(stamps.values())} {max(stamps.values())}")
    _write(out, phases)
    await relay.stop()
    await bus.close()
    await db.dispose()
    _say("DONE")


async def consume(url: str, redis_url: str, context: str, out: Path) -> None:
    db = Database(url, MIGRATIONS)
    await db.migrate()
    bus = Bus.from_url(redis_url)
    handled: list[str] = []
    stamps: dict[str, int] = {}
    progress = asyncio.Condition()
    wakers: set[asyncio.Task[None]] = set()

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        value = StringValue.FromString(envelope.payload).value
        await session.execute(sa.insert(effects).values(event_id=envelope.event_id, value=value))
        handled.append(envelope.event_id)

    def committed() -> None:
        now = _now_us()
        for event_id in handled:
            stamps[event_id] = now
        handled.clear()
        waker = asyncio.get_running_loop().create_task(_notify(progress))
        wakers.add(waker)
        waker.add_done_callback(wakers.discard)

    consumer = Consumer(
        db,
        bus,
        group=f"{context}-consumers",
        streams=[stream_name(context)],
        handlers={EVENT_TYPE: handle},
        after_commit=committed,
        block_ms=100,  # only bounds how long stop() waits; new entries end a block at once
    )
    await consumer.start()
    _say("READY")

    def reached(wanted: int) -> Callable[[], bool]:
        return lambda: len(stamps) >= wanted

    while (words := (await _line()).split()) and words[0] != "stop":
        with contextlib.suppress(TimeoutError):  # the orchestrator sees the shortfall
            async with asyncio.timeout(120), progress:
                await progress.wait_for(reached(int(words[1])))
        _say(f"REACHED {len(stamps)} {max(stamps.values(), default=0)}")
    _write(out, stamps)
    await consumer.stop()
    await bus.close()
    await db.dispose()
    _say("DONE")


async def _notify(condition: asyncio.Condition) -> None:
    async with condition:
        condition.notify_all()


def main(argv: list[str]) -> None:
    command, url, redis_url, context, out = argv[1:6]
    side = produce if command == "produce" else consume
    asyncio.run(side(url, redis_url, context, Path(out)))


if __name__ == "__main__":
    main(sys.argv)
