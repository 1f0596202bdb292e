"""Fulfillment on SQLite and PostgreSQL: the OrderConfirmed effect and GetShipment over gRPC."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from emporium.fulfillment.v1 import events_pb2 as events
from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc
from emporium.order.v1 import events_pb2 as order_events
from emporium.order.v1 import order_service_pb2 as order_pb
from google.protobuf.message import Message

from services.fulfillment import main as fulfillment_main
from services.fulfillment.handlers import MalformedEvent, handle_order_confirmed
from services.fulfillment.repository import SqlFulfillmentTx
from services.platform import outbox
from services.platform.bus import Bus, decode, stream_name
from services.platform.db import Database
from services.platform.embedded_redis import EmbeddedRedis
from services.platform.outbox import Envelope
from services.platform.status import field_violations
from services.platform.uow import SqlUnitOfWork
from tests.conftest import Tokens
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bearer

_EVENT_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls for cls in (events.ShipmentCreated, events.ShipmentDispatched)
}


def order_confirmed(order_id: str | None = None, user_id: str = "user-1") -> Envelope:
    """An OrderConfirmed envelope as the order service would publish it."""
    if order_id is None:
        order_id = f"order-{uuid.uuid4().hex[:8]}"
    event = order_events.OrderConfirmed(
        order_id=order_id,
        payment_id=str(uuid.uuid4()),
        user_id=user_id,
        lines=[order_pb.OrderLine(product_id="p-1", sku="MUG-1", name="Mug", quantity=2)],
        shipping_address=order_pb.ShippingAddress(
            name="Ada Lovelace", line1="1 St James's Square", city="London", country_code="GB"
        ),
    )
    return outbox.envelope(event, order_id)


@dataclass
class Store:
    """Fulfillment's database, driven the way the consumer drives it."""

    db: Database
    url: str

    async def deliver(self, envelope: Envelope) -> None:
        handler = SqlUnitOfWork(self.db, SqlFulfillmentTx).event_handler(handle_order_confirmed)
        async with self.db.write() as tx:
            await handler(tx, envelope)

    async def rows(self, sql: str) -> list[tuple[object, ...]]:
        async with self.db.read() as tx:
            rows: list[Any] = await tx.fetch_all(sa.text(sql))
        return [tuple(row) for row in rows]

    async def events(self) -> list[tuple[str, Message]]:
        rows = await self.rows("SELECT stream, event_type, payload FROM outbox ORDER BY id")
        return [
            (str(stream), _EVENT_TYPES[str(kind)].FromString(bytes(payload)))  # type: ignore[arg-type]
            for stream, kind, payload in rows
        ]


@pytest.fixture
async def store(backend: str, tmp: Path) -> AsyncIterator[Store]:
    async with fresh_database(backend, tmp, "fulfillment") as url:
        db = Database(url, fulfillment_main.MIGRATIONS)
        await db.migrate()
        try:
            yield Store(db, url)
        finally:
            await db.dispose()


@pytest.fixture
async def shipments(
    store: Store, identity_server: servers.Running
) -> AsyncIterator[pb_grpc.FulfillmentServiceStub]:
    settings = servers.settings_for(
        "fulfillment", store.url, IDENTITY_TARGET=identity_server.target
    )
    async with servers.serve(fulfillment_main.build, settings) as running:
        yield pb_grpc.FulfillmentServiceStub(running.channel)


async def _get(stub: pb_grpc.FulfillmentServiceStub, order_id: str, token: str) -> pb.Shipment:
    request = pb.GetShipmentRequest(order_id=order_id)
    return (await stub.GetShipment(request, metadata=bearer(token))).shipment


async def _code_of(
    stub: pb_grpc.FulfillmentServiceStub, order_id: str, token: str | None
) -> grpc.StatusCode:
    request = pb.GetShipmentRequest(order_id=order_id)
    with pytest.raises(grpc.RpcError) as caught:
        await stub.GetShipment(request, metadata=bearer(token) if token else None)
    code: grpc.StatusCode = caught.value.code()
    return code


# -- The OrderConfirmed effect -------------------------------------------------------------------


async def test_order_confirmed_creates_a_dispatched_shipment_and_publishes_both_events(
    store: Store,
) -> None:
    envelope = order_confirmed("order-1", user_id="user-7")
    await store.deliver(envelope)

    [(shipment_id, user_id, status, address, carrier, tracking)] = await store.rows(
        "SELECT shipment_id, user_id, status, shipping_address, carrier, tracking_number"
        " FROM shipments WHERE order_id = 'order-1'"
    )
    assert (user_id, status, carrier) == ("user-7", "DISPATCHED", "Emporium Express")
    assert str(tracking).startswith("EX")
    assert json.loads(str(address))["city"] == "London"
    published = await store.events()
    assert [(stream, type(event)) for stream, event in published] == [
        ("fulfillment", events.ShipmentCreated),
        ("fulfillment", events.ShipmentDispatched),
    ]
    dispatched = published[1][1]
    assert isinstance(dispatched, events.ShipmentDispatched)
    assert (dispatched.shipment_id, dispatched.order_id) == (shipment_id, "order-1")
    assert (dispatched.carrier, dispatched.tracking_number) == (carrier, tracking)
    assert await store.rows("SELECT DISTINCT aggregate_id FROM outbox") == [(shipment_id,)]


async def test_the_same_order_confirmed_twice_creates_one_shipment(store: Store) -> None:
    envelope = order_confirmed()
    await store.deliver(envelope)
    await store.deliver(envelope)
    # A re-published event carries a new id but the same order: still one shipment.
    await store.deliver(order_confirmed(envelope.aggregate_id))

    assert await store.rows("SELECT COUNT(*) FROM shipments") == [(1,)]
    assert len(await store.events()) == 2


async def test_an_order_confirmed_without_an_order_or_user_is_refused(store: Store) -> None:
    for envelope in (order_confirmed(""), order_confirmed(user_id="")):
        with pytest.raises(MalformedEvent):
            await store.deliver(envelope)
    assert await store.rows("SELECT COUNT(*) FROM shipments") == [(0,)]
    assert await store.events() == []


# -- GetShipment -----------------------------------------------------------------------------------


async def test_the_owner_reads_the_shipment_of_their_order(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    await store.deliver(order_confirmed("order-2", user_id="user-2"))
    shipment = await _get(shipments, "order-2", tokens.user("user-2"))
    assert shipment.order_id == "order-2"
    assert shipment.status == pb.SHIPMENT_STATUS_DISPATCHED
    assert shipment.carrier == "Emporium Express"
    assert shipment.tracking_number.startswith("EX")
    assert shipment.dispatch_time.ToMicroseconds() >= shipment.create_time.ToMicroseconds() > 0


async def test_admins_and_the_order_service_read_any_shipment(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    await store.deliver(order_confirmed("order-3", user_id="user-3"))
    by_admin = await _get(shipments, "order-3", tokens.admin)
    by_order_service = await _get(shipments, "order-3", tokens.service("order"))
    assert by_admin == by_order_service
    assert by_admin.order_id == "order-3"


async def test_another_users_shipment_is_not_found(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    await store.deliver(order_confirmed("order-4", user_id="user-4"))
    assert await _code_of(shipments, "order-4", tokens.user("user-5")) == grpc.StatusCode.NOT_FOUND
    other_service = tokens.service("catalog")
    assert await _code_of(shipments, "order-4", other_service) == grpc.StatusCode.NOT_FOUND
    assert await _code_of(shipments, "order-4", None) == grpc.StatusCode.UNAUTHENTICATED


async def test_a_shipment_not_created_yet_is_not_found(
    shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    assert await _code_of(shipments, "no-such-order", tokens.admin) == grpc.StatusCode.NOT_FOUND


async def test_get_shipment_needs_a_valid_order_id(
    shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    for order_id in ("", "o" * 65):
        request = pb.GetShipmentRequest(order_id=order_id)
        with pytest.raises(grpc.RpcError) as caught:
            await shipments.GetShipment(request, metadata=bearer(tokens.admin))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "order_id" in field_violations(caught.value)


# -- Wired to the bus ------------------------------------------------------------------------------


async def test_with_redis_an_order_confirmed_on_the_bus_is_shipped_and_announced(
    store: Store, identity_server: servers.Running, tokens: Tokens, tmp: Path
) -> None:
    # A Redis of its own: the consumer group and streams of a real fulfillment service
    # have fixed names, which a shared Redis would share with other tests.
    with EmbeddedRedis(tmp / "redis") as redis:
        settings = servers.settings_for(
            "fulfillment", store.url, IDENTITY_TARGET=identity_server.target, REDIS_URL=redis.url
        )
        bus = Bus.from_url(redis.url)
        try:
            async with servers.serve(fulfillment_main.build, settings) as running:
                stub = pb_grpc.FulfillmentServiceStub(running.channel)
                envelope = order_confirmed("order-9", user_id="user-9")
                await bus.publish(stream_name("order"), [envelope])

                published: list[Envelope] = []
                for _ in range(100):  # up to 5 s; it usually takes milliseconds
                    entries = await bus.client.xrange(stream_name("fulfillment"))
                    published = [decode(fields) for _, fields in entries]
                    if len(published) == 2:
                        break
                    await asyncio.sleep(0.05)
                assert [e.event_type for e in published] == list(_EVENT_TYPES)
                shipment = await _get(stub, "order-9", tokens.user("user-9"))
                dispatched = events.ShipmentDispatched.FromString(published[1].payload)
                assert dispatched.tracking_number == shipment.tracking_number
                assert await store.rows("SELECT event_id FROM inbox") == [(envelope.event_id,)]
        finally:
            await bus.close()


# -- CancelShipment: fulfillment decides "ship" or "cancel" ----------------------------------------


async def _cancel(stub: pb_grpc.FulfillmentServiceStub, order_id: str, token: str) -> pb.Shipment:
    request = pb.CancelShipmentRequest(order_id=order_id, reason="changed my mind")
    return (await stub.CancelShipment(request, metadata=bearer(token))).shipment


async def test_a_cancelled_order_is_never_dispatched_when_its_confirmation_arrives_later(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    cancelled = await _cancel(shipments, "order-20", tokens.service("order"))
    assert cancelled.status == pb.SHIPMENT_STATUS_CANCELLED
    await store.deliver(order_confirmed("order-20"))
    assert await store.rows("SELECT status FROM shipments WHERE order_id = 'order-20'") == [
        ("CANCELLED",)
    ]
    assert await store.events() == []  # nothing created, nothing dispatched
    again = await _cancel(shipments, "order-20", tokens.service("order"))
    assert again == cancelled  # idempotent
    assert (await _get(shipments, "order-20", tokens.admin)).status == pb.SHIPMENT_STATUS_CANCELLED


async def test_a_dispatched_order_cannot_be_cancelled(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    await store.deliver(order_confirmed("order-21"))
    with pytest.raises(grpc.RpcError) as caught:
        await _cancel(shipments, "order-21", tokens.service("order"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    shipment = await _get(shipments, "order-21", tokens.admin)
    assert shipment.status == pb.SHIPMENT_STATUS_DISPATCHED


async def test_cancelling_races_the_confirmation_and_exactly_one_wins(
    store: Store, shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    order_ids = [f"order-race-{i}" for i in range(8)]

    async def cancel(order_id: str) -> grpc.StatusCode:
        try:
            await _cancel(shipments, order_id, tokens.service("order"))
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
        return grpc.StatusCode.OK

    results = await asyncio.gather(
        *(cancel(order_id) for order_id in order_ids),
        *(store.deliver(order_confirmed(order_id)) for order_id in order_ids),
    )
    codes = results[: len(order_ids)]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}
    won = {o: code == grpc.StatusCode.OK for o, code in zip(order_ids, codes, strict=True)}
    for order_id, cancelled in won.items():
        [(status,)] = await store.rows(
            f"SELECT status FROM shipments WHERE order_id = '{order_id}'"
        )
        assert status == ("CANCELLED" if cancelled else "DISPATCHED"), order_id
    dispatched = [e for _, e in await store.events() if isinstance(e, events.ShipmentDispatched)]
    assert sorted(e.order_id for e in dispatched) == sorted(o for o, c in won.items() if not c)


async def test_only_the_order_service_may_cancel_a_shipment(
    shipments: pb_grpc.FulfillmentServiceStub, tokens: Tokens
) -> None:
    for token in (tokens.user("user-1"), tokens.admin, tokens.service("catalog")):
        with pytest.raises(grpc.RpcError) as caught:
            await _cancel(shipments, "order-22", token)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
