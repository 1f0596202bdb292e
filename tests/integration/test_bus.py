"""The bus against real Redis and real SQLite/PostgreSQL: relay, consumer, inbox, tracing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.platform import outbox
from services.platform.bus import Bus, decode, encode, stream_name
from services.platform.consumer import Consumer
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


@pytest.fixture
async def new_context(bus: Bus) -> AsyncIterator[Callable[[], str]]:
    """Makes unique publishing contexts; their streams (and groups) go away afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(unique("ctx"))
        return made[-1]

    yield make
    if made:
        await bus.client.delete(*(stream_name(context) for context in made))


def consumer_for(
    db: Database, bus: Bus, context: str, handlers: dict[str, Any] | None = None, **options: Any
) -> Consumer:
    """A consumer of ``context``'s stream in a group of its own, quick to stop."""
    return Consumer(
        db,
        bus,
        group=unique("group"),
        streams=[stream_name(context)],
        handlers=handlers or {busapp.EVENT_TYPE: busapp.effect_handler("g")},
        block_ms=100,
        **options,
    )


def test_stream_entries_carry_exactly_the_envelope_fields() -> None:
    item = Envelope("e-1", "x.v1.Thing", "agg-1", 1_700_000_000_000_000, "00-ab-cd-01", b"\x00\x01")

    fields = encode(item)

    assert sorted(str(k) for k in fields) == sorted(
        ["event_id", "event_type", "aggregate_id", "occurred_at_us", "traceparent", "payload"]
    )
    assert decode({str(k).encode(): bytes(v) for k, v in fields.items()}) == item  # type: ignore[arg-type]


async def test_one_publish_adds_every_streams_envelopes_in_order_even_after_redis_forgot_the_script(
    bus: Bus, new_context: Callable[[], str]
) -> None:
    first, second = stream_name(new_context()), stream_name(new_context())
    items = [outbox.envelope(StringValue(value=f"v{i}"), f"agg-{i % 2}") for i in range(5)]
    await bus.client.script_flush()  # what a restarted Redis has forgotten

    ids = await bus.publish_many({first: items[:3], second: items[3:], "unused": []})

    assert set(ids) == {first, second}
    for stream, sent in ((first, items[:3]), (second, items[3:])):
        entries = await bus.client.xrange(stream)
        assert [entry_id.decode() for entry_id, _ in entries] == ids[stream]
        assert [decode(fields) for _, fields in entries] == sent
    assert await bus.client.exists("unused") == 0


async def test_a_bus_with_a_max_length_trims_its_streams_as_it_publishes(
    redis_url: str, new_context: Callable[[], str]
) -> None:
    stream = stream_name(new_context())
    bus = Bus.from_url(redis_url, max_length=10)
    try:
        for batch in range(5):
            items = [outbox.envelope(StringValue(value=f"{batch}-{i}"), "a") for i in range(200)]
            last = (await bus.publish(stream, items))[-1]
        assert await bus.client.xlen(stream) < 1000  # MAXLEN ~: whole nodes of entries
        [(newest, _)] = await bus.client.xrevrange(stream, count=1)
        assert newest.decode() == last
    finally:
        await bus.close()


async def test_relay_publishes_committed_rows_promptly_and_marks_them(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    metrics = Metrics("order")
    # A long idle poll: only the notification can explain a prompt publication.
    relay = OutboxRelay(db, bus, idle_poll=60.0, metrics=metrics)
    probe = await busapp.record_events(db, context, ["probe"])
    await relay.start()
    try:
        # Once the first round has published the probe, the relay waits (up to 60 s).
        await busapp.eventually(lambda: _none_unpublished(db), timeout=15.0)
        started = time.monotonic()
        ids = await busapp.record_events(db, context, [f"v{i}" for i in range(5)])
        relay.notify()

        await busapp.eventually(lambda: _none_unpublished(db), timeout=15.0)
        elapsed = time.monotonic() - started
    finally:
        await relay.stop()

    assert elapsed < 10.0  # the notification, not the 60 s poll (a loaded CI box is slow)
    assert await busapp.stream_event_ids(bus.client, stream_name(context)) == probe + ids
    published = metrics.registry.get_sample_value(
        "emporium_events_published_total", {"stream": stream_name(context)}
    )
    assert published == 6


async def _none_unpublished(db: Database) -> bool:
    return await busapp.unpublished(db) == 0


async def test_the_running_relay_marks_several_rounds_together_and_never_resends_them(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    stream = stream_name(context)
    # Marks due only after a minute: every round below publishes without marking.
    relay = OutboxRelay(db, bus, idle_poll=60.0, mark_delay=60.0)
    await relay.start()
    try:
        first = await busapp.record_events(db, context, ["a1", "a2"])
        relay.notify()

        async def published(n: int) -> bool:
            return len(await busapp.stream_event_ids(bus.client, stream)) >= n

        await busapp.eventually(lambda: published(2), timeout=15.0)
        second = await busapp.record_events(db, context, ["b1"])
        relay.notify()
        await busapp.eventually(lambda: published(3), timeout=15.0)
        assert await busapp.unpublished(db) == 3  # published, not yet marked
    finally:
        await relay.stop()  # marks what it published

    assert await busapp.unpublished(db) == 0
    assert await busapp.stream_event_ids(bus.client, stream) == first + second  # once each


async def test_relay_publishes_in_commit_order_across_batches_and_contexts(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    first, second = new_context(), new_context()
    ids_first = await busapp.record_events(db, first, ["a1", "a2", "a3", "a4"])
    ids_second = await busapp.record_events(db, second, ["b1", "b2"])
    ids_first += await busapp.record_events(db, first, ["a5", "a6", "a7"])
    relay = OutboxRelay(db, bus, batch_size=3)

    published = await relay.drain()

    assert published == 9
    assert await busapp.stream_event_ids(bus.client, stream_name(first)) == ids_first
    assert await busapp.stream_event_ids(bus.client, stream_name(second)) == ids_second
    assert await busapp.unpublished(db) == 0
    assert await relay.drain() == 0


async def test_relay_reports_the_outbox_backlog_while_it_cannot_publish(
    db: Database,
) -> None:
    metrics = Metrics("order")
    nowhere = Bus.from_url(f"redis://127.0.0.1:{free_port()}/0")
    await busapp.record_events(db, unique("ctx"), ["a", "b", "c"])
    relay = OutboxRelay(db, nowhere, metrics=metrics)
    await relay.start()
    try:
        await busapp.eventually(
            lambda: _sample_is(metrics, "emporium_outbox_backlog", {}, 3.0), timeout=3.0
        )
    finally:
        await relay.stop()
        await nowhere.close()

    assert await busapp.unpublished(db) == 3


async def _sample_is(metrics: Metrics, name: str, labels: dict[str, str], value: float) -> bool:
    return metrics.registry.get_sample_value(name, labels) == value


async def test_consumer_applies_each_event_once_including_those_published_before_it_started(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    ids = await busapp.record_events(db, context, [f"v{i}" for i in range(20)])
    await OutboxRelay(db, bus).drain()
    consumer = consumer_for(db, bus, context)
    await consumer.start()
    try:
        await busapp.eventually(lambda: _inbox_has(db, len(ids)))
    finally:
        await consumer.stop()

    assert sorted(await busapp.effect_event_ids(db)) == sorted(ids)
    pending = await bus.client.xpending(stream_name(context), consumer.group)
    assert pending["pending"] == 0


async def _inbox_has(db: Database, count: int) -> bool:
    return len(await busapp.inbox_event_ids(db)) >= count


async def test_an_event_delivered_twice_has_one_effect(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    item = outbox.envelope(StringValue(value="once"), "agg-1")
    await bus.publish(stream_name(context), [item, item])
    metrics = Metrics("fulfillment")
    consumer = consumer_for(db, bus, context, metrics=metrics)
    await consumer.start()
    try:
        labels = {"group": consumer.group, "event_type": busapp.EVENT_TYPE}
        await busapp.eventually(
            lambda: _sample_is(
                metrics, "emporium_events_processed_total", {**labels, "outcome": "duplicate"}, 1
            )
        )
    finally:
        await consumer.stop()

    assert await busapp.effect_event_ids(db) == [item.event_id]
    assert (await bus.client.xpending(stream_name(context), consumer.group))["pending"] == 0


async def test_events_without_a_handler_are_acknowledged_without_a_transaction(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    stream = stream_name(context)

    def unknown() -> Envelope:
        item = outbox.envelope(StringValue(value="nobody handles me"), "agg-1")
        return Envelope(
            item.event_id, "emporium.test.v1.Unknown", "agg-1", item.occurred_at_us, "", b""
        )

    alone = unknown()
    await bus.publish(stream, [alone])  # read on its own: applied alone
    metrics = Metrics("fulfillment")
    consumer = consumer_for(db, bus, context, metrics=metrics)

    def unhandled() -> float:
        sample = metrics.registry.get_sample_value(
            "emporium_events_processed_total",
            {
                "group": consumer.group,
                "event_type": "emporium.test.v1.Unknown",
                "outcome": "unhandled",
            },
        )
        return sample or 0.0

    async def counted(n: int) -> bool:
        return unhandled() >= n

    await consumer.start()
    try:
        await busapp.eventually(lambda: counted(1))
        # Then one beside a handled event, published (and so read) together: one chunk.
        mixed, handled = unknown(), outbox.envelope(StringValue(value="v1"), "agg-2")
        await bus.publish(stream, [mixed, handled])
        await busapp.eventually(lambda: _inbox_has(db, 1))
        await busapp.eventually(lambda: counted(2))
    finally:
        await consumer.stop()

    assert await busapp.inbox_event_ids(db) == [handled.event_id]  # none for the other two
    assert await busapp.effect_event_ids(db) == [handled.event_id]
    assert (await bus.client.xpending(stream, consumer.group))["pending"] == 0


async def test_a_failing_handler_is_retried_until_it_succeeds(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    attempts: list[str] = []
    effect = busapp.effect_handler("g")

    async def flaky(tx: Transaction, envelope: Envelope) -> None:
        attempts.append(envelope.event_id)
        if len(attempts) < 3:
            raise ConnectionError("downstream not ready yet")
        await effect(tx, envelope)

    [event_id] = await busapp.record_events(db, context, ["flaky"])
    await OutboxRelay(db, bus).drain()
    consumer = consumer_for(
        db, bus, context, handlers={busapp.EVENT_TYPE: flaky}, retry_backoff=0.02
    )
    await consumer.start()
    try:
        await busapp.eventually(lambda: _inbox_has(db, 1))
    finally:
        await consumer.stop()

    assert attempts == [event_id] * 3
    assert await busapp.effect_event_ids(db) == [event_id]
    assert await bus.client.xlen(f"emporium.dead.{consumer.group}") == 0


async def test_each_handler_runs_in_the_trace_of_its_events_traceparent(
    db: Database, bus: Bus, new_context: Callable[[], str]
) -> None:
    context = new_context()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    seen: dict[str, tuple[int, str]] = {}

    async def handler(tx: Transaction, envelope: Envelope) -> None:
        # The current trace, and what outbox.record would stamp on an event published here.
        current = trace.get_current_span().get_span_context()
        seen[StringValue.FromString(envelope.payload).value] = (
            current.trace_id,
            outbox.current_traceparent(),
        )

    origins = {}
    for name in ("first", "second"):  # two traces, delivered in one batch
        with tracer.start_as_current_span(f"PlaceOrder {name}") as origin:
            await busapp.record_events(db, context, [name])
        origins[name] = origin.get_span_context()
    await OutboxRelay(db, bus).drain()
    consumer = consumer_for(db, bus, context, handlers={busapp.EVENT_TYPE: handler}, tracer=tracer)
    await consumer.start()
    try:
        await busapp.eventually(lambda: _inbox_has(db, 2))
    finally:
        await consumer.stop()
    provider.shutdown()

    consumer_spans = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.CONSUMER]
    assert len(consumer_spans) == 2
    for name, origin_context in origins.items():
        trace_id, traceparent = seen[name]
        assert trace_id == origin_context.trace_id
        assert traceparent.split("-")[1] == f"{origin_context.trace_id:032x}"
        [span] = [s for s in consumer_spans if s.context.trace_id == origin_context.trace_id]
        assert span.parent is not None
        assert span.parent.span_id == origin_context.span_id


async def test_bus_ping_answers_only_while_redis_is_reachable(bus: Bus) -> None:
    nowhere = Bus.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await nowhere.ping()
    finally:
        await nowhere.close()

    await bus.ping()  # answers: no exception
    assert await bus.client.echo(b"still here") == b"still here"
