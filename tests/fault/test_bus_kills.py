"""Kill -9 a consumer or the relay at the worst moment: every event still has one effect."""

from __future__ import annotations

from collections import Counter
from typing import Any

from services.platform.bus import Bus, stream_name
from services.platform.db import Database
from services.platform.embedded_redis import EmbeddedRedis
from services.platform.metrics import Metrics
from services.platform.relay import OutboxRelay
from tests import busapp
from tests.support.redis import unique


async def test_a_consumer_killed_after_its_effect_and_before_its_ack_is_taken_over_once(
    db: Database, bus: Bus, embedded_redis: EmbeddedRedis
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    ids = await busapp.record_events(db, context, ["a", "b", "c"])
    await OutboxRelay(db, bus).drain()
    doomed = await busapp.spawn_worker(
        "consume", db.url, embedded_redis.url, context, group, "doomed"
    )
    try:
        await busapp.expect_line(doomed, "COMMITTED")
    finally:
        await busapp.kill(doomed)
    assert sorted(await busapp.effect_event_ids(db)) == sorted(ids)
    assert (await bus.client.xpending(stream, group))["pending"] == 3

    metrics = Metrics("fulfillment")
    rescuer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        busapp.effect_handler(group),
        consumer_name="rescuer",
        claim_idle_ms=300,
        block_ms=50,
        metrics=metrics,
    )
    await rescuer.start()
    try:
        await busapp.eventually(lambda: _nothing_pending(bus, stream, group))
    finally:
        await rescuer.stop()

    assert sorted(await busapp.effect_event_ids(db)) == sorted(ids)
    assert await _processed(metrics, group, "duplicate") == 3  # reclaimed, not re-applied


async def _nothing_pending(bus: Bus, stream: str, group: str) -> bool:
    return int((await bus.client.xpending(stream, group))["pending"]) == 0


async def test_a_relay_killed_between_publishing_and_marking_causes_duplicates_but_one_effect_each(
    db: Database, bus: Bus, embedded_redis: EmbeddedRedis
) -> None:
    context = unique("ctx")
    stream = stream_name(context)
    ids = await busapp.record_events(db, context, [f"v{i}" for i in range(5)])
    doomed = await busapp.spawn_worker("relay", db.url, embedded_redis.url)
    try:
        assert await busapp.expect_line(doomed, "PUBLISHED") == "PUBLISHED 5"
    finally:
        await busapp.kill(doomed)
    assert await busapp.unpublished(db) == 5

    assert await OutboxRelay(db, bus).drain() == 5
    on_stream = Counter(await busapp.stream_event_ids(bus.client, stream))
    assert on_stream == dict.fromkeys(ids, 2)

    metrics = Metrics("fulfillment")
    group = unique("group")
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        busapp.effect_handler(group),
        block_ms=50,
        metrics=metrics,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _all_read(metrics, group, handled=5, duplicates=5))
    finally:
        await consumer.stop()

    assert sorted(await busapp.effect_event_ids(db)) == sorted(ids)
    assert await busapp.unpublished(db) == 0
    assert await _nothing_pending(bus, stream, group)


async def _processed(metrics: Metrics, group: str, outcome: str) -> float:
    labels = {"group": group, "event_type": busapp.EVENT_TYPE, "outcome": outcome}
    return metrics.registry.get_sample_value("emporium_events_processed_total", labels) or 0.0


async def _all_read(metrics: Metrics, group: str, handled: int, duplicates: int) -> bool:
    return (
        await _processed(metrics, group, "handled") == handled
        and await _processed(metrics, group, "duplicate") == duplicates
    )


async def test_entries_deleted_while_a_dead_consumer_held_them_are_acknowledged_on_reclaim(
    db: Database, bus: Bus
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    ids = await busapp.record_events(db, context, ["trimmed", "kept"])
    await OutboxRelay(db, bus).drain()
    await bus.client.xgroup_create(stream, group, id="0")
    redis: Any = bus.client
    [(_, [(trimmed, _fields), _kept])] = await redis.xreadgroup(group, "dead", {stream: ">"})
    await redis.xdel(stream, trimmed)  # as MAXLEN trimming would
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        busapp.effect_handler(group),
        claim_idle_ms=1,
        block_ms=50,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _nothing_pending(bus, stream, group))
    finally:
        await consumer.stop()

    assert await busapp.effect_event_ids(db) == [ids[1]]
