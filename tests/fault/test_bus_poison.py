"""Poison events go to the dead-letter stream with their reason; the rest keeps flowing."""

from __future__ import annotations

from google.protobuf.wrappers_pb2 import StringValue

from services.platform import outbox
from services.platform.bus import Bus, DeadLetters, dead_letter_stream, stream_name
from services.platform.db import Database, Transaction
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope
from services.platform.relay import OutboxRelay
from tests import busapp
from tests.support.redis import unique


async def test_a_poison_event_is_dead_lettered_after_max_deliveries_while_later_events_flow(
    db: Database, bus: Bus
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    attempts: list[str] = []
    effect = busapp.effect_handler(group)

    async def counting(tx: Transaction, envelope: Envelope) -> None:
        attempts.append(envelope.event_id)
        await effect(tx, envelope)

    metrics = Metrics("fulfillment")
    relay = OutboxRelay(db, bus)
    good = await busapp.record_events(db, context, ["good-1"])
    [poison] = await busapp.record_events(db, context, ["poison-1"])
    good += await busapp.record_events(db, context, ["good-2"])
    await relay.drain()
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        counting,
        max_deliveries=3,
        block_ms=50,
        retry_backoff=0.02,
        metrics=metrics,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _dead_letters(bus, group, 1))
        good += await busapp.record_events(db, context, ["good-3", "good-4"])
        await relay.drain()
        await busapp.eventually(lambda: _inbox_holds(db, len(good)))
    finally:
        await consumer.stop()

    [dead] = await busapp.dead_letters(bus.client, group)
    assert dead[b"event_id"].decode() == poison
    assert dead[b"event_type"].decode() == busapp.EVENT_TYPE
    assert StringValue.FromString(dead[b"payload"]).value == "poison-1"
    assert dead[b"dead_reason"] == b"PoisonError: cannot digest poison-1"
    assert dead[b"dead_deliveries"] == b"3"
    assert dead[b"dead_source_stream"].decode() == stream
    assert attempts.count(poison) == 3
    assert sorted(await busapp.effect_event_ids(db)) == sorted(good)
    assert poison not in await busapp.inbox_event_ids(db)
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0
    dead_lettered = metrics.registry.get_sample_value(
        "emporium_dead_letters_total", {"group": group, "event_type": busapp.EVENT_TYPE}
    )
    assert dead_lettered == 1


async def test_an_entry_that_keeps_killing_its_consumers_is_dead_lettered_without_running(
    db: Database, bus: Bus
) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    item = outbox.envelope(StringValue(value="crashes everyone"), "agg-1")
    [entry_id] = await bus.publish(stream, [item])
    await bus.client.xgroup_create(stream, group, id="0")
    # Six consumers in turn took the entry and died without acknowledging it.
    await bus.client.xreadgroup(group, "ghost-0", {stream: ">"})
    for i in range(1, 6):
        await bus.client.xclaim(stream, group, f"ghost-{i}", 0, [entry_id])
    ran: list[str] = []

    async def handler(tx: Transaction, envelope: Envelope) -> None:
        ran.append(envelope.event_id)

    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        handler,
        max_deliveries=5,
        claim_idle_ms=1,
        block_ms=50,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _dead_letters(bus, group, 1))
    finally:
        await consumer.stop()

    [dead] = await busapp.dead_letters(bus.client, group)
    assert dead[b"event_id"].decode() == item.event_id
    assert dead[b"dead_reason"] == b"delivered 7 times without being acknowledged"
    assert ran == []
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0


async def test_a_dead_letter_replayed_after_the_fix_is_applied_once(db: Database, bus: Bus) -> None:
    context, group = unique("ctx"), unique("group")
    stream = stream_name(context)
    broken = True
    effect = busapp.effect_handler(group)

    async def handler(tx: Transaction, envelope: Envelope) -> None:
        if broken:
            raise RuntimeError("bug in the handler")
        await effect(tx, envelope)

    [event_id] = await busapp.record_events(db, context, ["needs-the-fix"])
    await OutboxRelay(db, bus).drain()
    consumer = busapp.consumer(
        db,
        bus,
        group,
        stream,
        handler,
        max_deliveries=1,
        block_ms=50,
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _dead_letters(bus, group, 1))
        broken = False  # the fix is deployed

        assert len(await DeadLetters(bus, group).replay()) == 1
        await busapp.eventually(lambda: _inbox_holds(db, 1))
    finally:
        await consumer.stop()

    assert await busapp.effect_event_ids(db) == [event_id]
    assert await bus.client.xlen(dead_letter_stream(group)) == 0
    assert int((await bus.client.xpending(stream, group))["pending"]) == 0


async def _dead_letters(bus: Bus, group: str, count: int) -> bool:
    return int(await bus.client.xlen(dead_letter_stream(group))) >= count


async def _inbox_holds(db: Database, count: int) -> bool:
    return len(await busapp.inbox_event_ids(db)) >= count
