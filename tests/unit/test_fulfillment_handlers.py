"""Fulfillment's handlers on a fake unit of work and a counting carrier: no I/O."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from emporium.fulfillment.v1 import events_pb2 as events
from emporium.order.v1 import events_pb2 as order_events
from emporium.order.v1 import order_service_pb2 as order_pb

from services.fulfillment.domain import CancelShipment, GetShipment, ShipmentStatus, cancelled
from services.fulfillment.handlers import (
    EventHandler,
    Fulfillment,
    MalformedEvent,
    order_confirmed_handler,
)
from services.platform import auth, outbox
from services.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.platform.outbox import Envelope
from tests.support.fakes import FakeUnitOfWork
from tests.support.fakes.fulfillment import (
    CountingCarrier,
    FakeFulfillmentTx,
    FulfillmentState,
    fake_fulfillment_uow,
)

ORDER = auth.Caller("service:order", "svc-order", frozenset({auth.SERVICE_ROLE}))
CATALOG = auth.Caller("service:catalog", "svc-catalog", frozenset({auth.SERVICE_ROLE}))
ADMIN = auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE}))
NOW = 1_000_000_000
Uow = FakeUnitOfWork[FulfillmentState, FakeFulfillmentTx]


def _user(user_id: str) -> auth.Caller:
    return auth.Caller(user_id, user_id, frozenset())


@pytest.fixture
def uow() -> Uow:
    return fake_fulfillment_uow()


@pytest.fixture
def carrier() -> CountingCarrier:
    return CountingCarrier()


@pytest.fixture
def ship(carrier: CountingCarrier) -> EventHandler:
    ids = iter(f"ship-{n}" for n in range(100))
    return order_confirmed_handler(carrier, clock=lambda: NOW, new_id=lambda: next(ids))


@pytest.fixture
def fulfillment(uow: Uow) -> Iterator[Fulfillment]:
    ids = iter(f"cancel-{n}" for n in range(100))
    auth.set_caller(ORDER)
    yield Fulfillment(uow, clock=lambda: NOW + 1, new_id=lambda: next(ids))
    auth.set_caller(None)


def order_confirmed(order_id: str = "order-1", user_id: str = "user-1") -> Envelope:
    event = order_events.OrderConfirmed(
        order_id=order_id,
        payment_id="pay-1",
        user_id=user_id,
        shipping_address=order_pb.ShippingAddress(
            name="Ada Lovelace", line1="1 St James's Square", city="London", country_code="GB"
        ),
    )
    return outbox.envelope(event, order_id)


async def deliver(uow: Uow, handler: EventHandler, envelope: Envelope) -> None:
    """As the consumer runs it: in a write transaction of its own."""
    async with uow.write() as tx:
        await handler(tx, envelope)


# -- The OrderConfirmed effect -------------------------------------------------------------------


async def test_order_confirmed_dispatches_a_shipment_and_records_both_events(
    uow: Uow, ship: EventHandler, carrier: CountingCarrier
) -> None:
    await deliver(uow, ship, order_confirmed("order-1", user_id="user-7"))

    shipment = uow.state.shipments["order-1"]
    assert (shipment.shipment_id, shipment.user_id) == ("ship-0", "user-7")
    assert shipment.status is ShipmentStatus.DISPATCHED
    assert (shipment.carrier, shipment.tracking_number) == ("Test Carrier", "TEST-ship-0")
    assert shipment.created_at_us == shipment.dispatched_at_us == NOW
    assert json.loads(shipment.shipping_address)["city"] == "London"
    assert [parcel.status for parcel in carrier.parcels] == [ShipmentStatus.CREATED]
    assert uow.outbox.event_types() == ["ShipmentCreated", "ShipmentDispatched"]
    assert {item.aggregate_id for item in uow.outbox.committed} == {"ship-0"}
    dispatched = events.ShipmentDispatched.FromString(uow.outbox.committed[1].payload)
    assert (dispatched.order_id, dispatched.tracking_number) == ("order-1", "TEST-ship-0")


async def test_a_second_order_confirmed_for_the_order_changes_nothing(
    uow: Uow, ship: EventHandler, carrier: CountingCarrier
) -> None:
    envelope = order_confirmed()
    await deliver(uow, ship, envelope)
    first = uow.state.shipments["order-1"]
    await deliver(uow, ship, envelope)
    await deliver(uow, ship, order_confirmed())  # re-published: a new event id

    assert uow.state.shipments == {"order-1": first}
    assert len(carrier.parcels) == 1
    assert uow.outbox.event_types() == ["ShipmentCreated", "ShipmentDispatched"]


@pytest.mark.parametrize(
    ("order_id", "user_id"), [("", "user-1"), ("order-1", ""), ("o" * 65, "user-1")]
)
async def test_an_order_confirmed_without_a_valid_order_or_user_is_refused(
    uow: Uow, ship: EventHandler, order_id: str, user_id: str
) -> None:
    with pytest.raises(MalformedEvent):
        await deliver(uow, ship, order_confirmed(order_id, user_id))
    assert uow.state.shipments == {}
    assert uow.outbox.committed == []


async def test_an_order_cancelled_first_is_never_handed_to_the_carrier(
    uow: Uow, ship: EventHandler, carrier: CountingCarrier, fulfillment: Fulfillment
) -> None:
    shipment = await fulfillment.cancel_shipment(CancelShipment("order-1", "changed my mind"))
    assert (shipment.shipment_id, shipment.status) == ("cancel-0", ShipmentStatus.CANCELLED)

    await deliver(uow, ship, order_confirmed("order-1"))

    assert uow.state.shipments == {"order-1": shipment}
    assert carrier.parcels == []
    assert uow.outbox.committed == []


async def test_a_cancellation_committed_during_the_confirmation_wins(
    uow: Uow, ship: EventHandler
) -> None:
    rival = cancelled("cancel-9", "order-1", NOW)
    uow.state.rivals.append(rival)

    await deliver(uow, ship, order_confirmed("order-1"))

    assert uow.state.shipments == {"order-1": rival}
    assert uow.outbox.committed == []


# -- CancelShipment --------------------------------------------------------------------------------


async def test_cancelling_is_idempotent_and_records_no_event(
    uow: Uow, fulfillment: Fulfillment
) -> None:
    first = await fulfillment.cancel_shipment(CancelShipment("order-1", "changed my mind"))
    again = await fulfillment.cancel_shipment(CancelShipment("order-1", ""))
    assert again == first
    assert first.created_at_us == NOW + 1
    assert uow.state.shipments == {"order-1": first}
    assert uow.outbox.committed == []


async def test_a_dispatched_order_cannot_be_cancelled(
    uow: Uow, ship: EventHandler, fulfillment: Fulfillment
) -> None:
    await deliver(uow, ship, order_confirmed("order-1"))
    with pytest.raises(FailedPrecondition):
        await fulfillment.cancel_shipment(CancelShipment("order-1", ""))
    assert uow.state.shipments["order-1"].status is ShipmentStatus.DISPATCHED


async def test_a_dispatch_committed_during_the_cancellation_wins(
    uow: Uow, ship: EventHandler, fulfillment: Fulfillment
) -> None:
    other: Uow = fake_fulfillment_uow()
    await deliver(other, ship, order_confirmed("order-1"))
    uow.state.rivals.append(other.state.shipments["order-1"])

    with pytest.raises(FailedPrecondition):
        await fulfillment.cancel_shipment(CancelShipment("order-1", ""))
    assert uow.state.shipments["order-1"].status is ShipmentStatus.DISPATCHED


@pytest.mark.parametrize("caller", [_user("user-1"), ADMIN, CATALOG])
async def test_only_the_order_service_may_cancel(
    uow: Uow, fulfillment: Fulfillment, caller: auth.Caller
) -> None:
    auth.set_caller(caller)
    with pytest.raises(PermissionDenied):
        await fulfillment.cancel_shipment(CancelShipment("order-1", ""))
    assert uow.state.shipments == {}


async def test_a_cancellation_needs_a_valid_order_id(fulfillment: Fulfillment) -> None:
    for order_id in ("", "o" * 65):
        with pytest.raises(InvalidArgument):
            await fulfillment.cancel_shipment(CancelShipment(order_id, ""))


# -- GetShipment -----------------------------------------------------------------------------------


async def test_the_owner_admins_and_the_order_service_read_a_shipment(
    uow: Uow, ship: EventHandler, fulfillment: Fulfillment
) -> None:
    await deliver(uow, ship, order_confirmed("order-1", user_id="user-1"))
    writes = uow.writes
    for caller in (_user("user-1"), ADMIN, ORDER):
        auth.set_caller(caller)
        shipment = await fulfillment.get_shipment(GetShipment("order-1"))
        assert shipment == uow.state.shipments["order-1"]
    assert (uow.writes, uow.reads) == (writes, 3)  # read transactions only


@pytest.mark.parametrize("caller", [_user("user-2"), CATALOG])
async def test_anyone_else_finds_no_shipment(
    uow: Uow, ship: EventHandler, fulfillment: Fulfillment, caller: auth.Caller
) -> None:
    await deliver(uow, ship, order_confirmed("order-1", user_id="user-1"))
    auth.set_caller(caller)
    with pytest.raises(NotFound):
        await fulfillment.get_shipment(GetShipment("order-1"))


async def test_a_shipment_not_created_yet_is_not_found(fulfillment: Fulfillment) -> None:
    with pytest.raises(NotFound):
        await fulfillment.get_shipment(GetShipment("no-such-order"))


async def test_get_shipment_needs_a_valid_order_id(fulfillment: Fulfillment) -> None:
    for order_id in ("", "o" * 65):
        with pytest.raises(InvalidArgument):
            await fulfillment.get_shipment(GetShipment(order_id))
