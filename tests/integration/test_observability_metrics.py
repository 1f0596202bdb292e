"""The bus metrics the alert rules read (observability/prometheus/bus.rules.yml), against
real Redis and real SQLite/PostgreSQL: outbox age, dead letters waiting, consumer lag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from services.platform import outbox
from services.platform.bus import Bus, DeadLetters, GroupMember, stream_name
from services.platform.db import Database, Transaction
from services.platform.embedded_redis import free_port
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope
from services.platform.relay import OutboxRelay
from tests import busapp
from tests.support.databases import fresh_database
from tests.support.redis import unique


@pytest.fixture
async def db(backend: str, tmp: Path) -> AsyncIterator[Database]:
    async with fresh_database(backend, tmp, "bus") as url, busapp.database(url) as database:
        yield database


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[Bus]:
    bus = Bus.from_url(redis_url)
    yield bus
    await bus.close()


def _sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


async def test_the_outbox_reports_how_long_its_oldest_event_waits_while_redis_is_away(
    db: Database,
) -> None:
    metrics = Metrics("inventory")
    nowhere = Bus.from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert _sample(metrics, "emporium_outbox_oldest_unpublished_seconds") is None
    await busapp.record_events(db, unique("ctx"), ["a", "b"])
    relay = OutboxRelay(db, nowhere, metrics=metrics)
    await relay.start()
    try:

        async def waiting() -> bool:
            return _sample(metrics, "emporium_outbox_backlog") == 2.0

        await busapp.eventually(waiting, timeout=3.0)
        first = _sample(metrics, "emporium_outbox_oldest_unpublished_seconds")
        assert first is not None
        assert first > 0

        async def older() -> bool:
            age = _sample(metrics, "emporium_outbox_oldest_unpublished_seconds")
            return age is not None and age > first + 0.05

        await busapp.eventually(older, timeout=3.0)
    finally:
        await relay.stop()
        await nowhere.close()


async def test_an_outbox_that_keeps_up_reports_no_age(db: Database, bus: Bus) -> None:
    metrics = Metrics("inventory")
    context = unique("ctx")
    await busapp.record_events(db, context, ["a"])
    relay = OutboxRelay(db, bus, metrics=metrics)
    await relay.start()
    try:

        async def published() -> bool:
            return _sample(metrics, "emporium_outbox_backlog") == 0.0

        await busapp.eventually(published, timeout=5.0)
        assert _sample(metrics, "emporium_outbox_oldest_unpublished_seconds") == 0.0
    finally:
        await relay.stop()
        await bus.client.delete(stream_name(context))


async def test_a_dead_letter_counts_as_waiting_until_it_is_replayed(db: Database, bus: Bus) -> None:
    context, group = unique("ctx"), unique("group")
    metrics = Metrics("fulfillment")
    cured = False
    effect = busapp.effect_handler(group)

    async def handler(tx: Transaction, envelope: Envelope) -> None:
        if not cured:
            raise busapp.PoisonError("not yet")
        await effect(tx, envelope)

    await bus.publish(stream_name(context), [outbox.envelope(StringValue(value="x"), "agg-1")])
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream_name(context),
        handler,
        max_deliveries=1,
        block_ms=50,
        retry_backoff=0.02,
        metrics=metrics,
    )
    await consumer.start()
    try:

        async def waiting(count: float) -> bool:
            return _sample(metrics, "emporium_dead_letters_waiting", {"group": group}) == count

        await busapp.eventually(lambda: waiting(1.0))
        cured = True
        assert len(await DeadLetters(bus, group).replay()) == 1
        await busapp.eventually(lambda: waiting(0.0))
    finally:
        await consumer.stop()
        await bus.client.delete(
            stream_name(context), f"emporium.dead.{group}", f"emporium.dead.{group}.aggregates"
        )


async def test_consumer_lag_counts_the_entries_not_yet_delivered_to_the_group(bus: Bus) -> None:
    """On Redis 7 from XINFO GROUPS; on the embedded Redis 6.2, counted past the group's
    last-delivered id. Either way the same number."""
    stream, group = stream_name(unique("ctx")), unique("group")
    member = GroupMember(bus, group, "reader", [stream])
    await member.ensure_groups()
    try:
        items = [outbox.envelope(StringValue(value=str(i)), f"agg-{i}") for i in range(5)]
        await bus.publish(stream, items)
        assert await member.backlog(stream) == (0, 5)
        delivered = await member.read_new(count=2, block_ms=10)
        assert len(delivered) == 2
        assert await member.backlog(stream) == (2, 3)
    finally:
        await bus.client.delete(stream)
