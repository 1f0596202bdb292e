"""Fulfillment's use cases: ship confirmed orders (an event handler), cancel shipments of
orders not dispatched yet, and serve shipments.

:func:`handle_order_confirmed` is the effect of an ``OrderConfirmed`` event on the unit of
work's repositories. The consumer runs it inside the transaction that also records the
event in the inbox (``uow.event_handler`` in ``main.py``), so its shipment and its outbox
events (stream ``fulfillment``) commit together with "processed". It is idempotent per
order on its own as well: a second OrderConfirmed for an order (a replayed event with a
new id) finds the shipment and does nothing, and so does an OrderConfirmed for an order
whose shipment was cancelled first (:meth:`Fulfillment.cancel_shipment`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass

from emporium.order.v1 import events_pb2 as order_events
from google.protobuf import json_format

from services.fulfillment import codec
from services.fulfillment.carrier import Carrier, SimulatedCarrier
from services.fulfillment.domain import (
    MAX_ID,
    CancelShipment,
    GetShipment,
    Shipment,
    ShipmentStatus,
    cancelled,
)
from services.fulfillment.ports import FulfillmentTx, FulfillmentUnitOfWork
from services.platform import auth
from services.platform.clock import now_us
from services.platform.errors import FailedPrecondition, NotFound
from services.platform.ids import random_id
from services.platform.outbox import Envelope

log = logging.getLogger("emporium.fulfillment")

ORDER_CONFIRMED = order_events.OrderConfirmed.DESCRIPTOR.full_name

#: An event's effect in the consumer's transaction, seen as fulfillment's repositories.
EventHandler = Callable[[FulfillmentTx, Envelope], Awaitable[None]]


class MalformedEvent(ValueError):
    """An event this service cannot act on; the consumer retries, then dead-letters it."""


def _check(event: order_events.OrderConfirmed) -> None:
    for name in ("order_id", "user_id"):
        value = getattr(event, name)
        if not value or len(value) > MAX_ID:
            raise MalformedEvent(f"OrderConfirmed.{name} must be 1-{MAX_ID} characters")


def order_confirmed_handler(
    carrier: Carrier | None = None,
    *,
    clock: Callable[[], int] = now_us,
    new_id: Callable[[], str] = random_id,
) -> EventHandler:
    """The OrderConfirmed effect with its carrier, clock and id source."""
    handover_to = carrier or SimulatedCarrier()

    async def handle(tx: FulfillmentTx, envelope: Envelope) -> None:
        confirmed = order_events.OrderConfirmed.FromString(envelope.payload)
        _check(confirmed)
        existing = await tx.shipments.by_order(confirmed.order_id)
        if existing is not None:
            if existing.status is ShipmentStatus.CANCELLED:
                log.info(
                    "not dispatching a cancelled order", extra={"order_id": confirmed.order_id}
                )
            return
        now = clock()
        created = Shipment(
            shipment_id=new_id(),
            order_id=confirmed.order_id,
            user_id=confirmed.user_id,
            status=ShipmentStatus.CREATED,
            shipping_address=json_format.MessageToJson(
                confirmed.shipping_address, preserving_proto_field_name=True, indent=None
            ),
            created_at_us=now,
        )
        handover = handover_to.dispatch(created)
        shipment = created.dispatch(handover.carrier, handover.tracking_number, now)
        if not await tx.shipments.add(shipment):
            return  # a concurrent delivery (or cancellation) of the same order came first
        await tx.outbox.record_many(
            [
                (codec.shipment_created(shipment), shipment.shipment_id),
                (codec.shipment_dispatched(shipment, now), shipment.shipment_id),
            ]
        )

    return handle


#: The effect of OrderConfirmed with the simulated carrier: ``(tx, envelope) -> None``.
handle_order_confirmed: EventHandler = order_confirmed_handler()


@dataclass(slots=True, eq=False)
class Fulfillment:
    """Serves shipments to the order's owner, admins and the order service, and decides
    cancellations for the order service."""

    uow: FulfillmentUnitOfWork
    _: KW_ONLY
    clock: Callable[[], int] = now_us
    new_id: Callable[[], str] = random_id

    async def cancel_shipment(self, command: CancelShipment) -> Shipment:
        """Records that the order must never be dispatched, unless it was already (then
        FAILED_PRECONDITION). Idempotent; the order's unique shipment settles a race with
        the OrderConfirmed effect: whichever commits first wins."""
        auth.require_service("order")
        command.validate()
        async with self.uow.write() as tx:
            shipment = await tx.shipments.by_order(command.order_id)
            if shipment is None:
                fresh = cancelled(self.new_id(), command.order_id, self.clock())
                if await tx.shipments.add(fresh):
                    log.info("shipment cancelled", extra={"order_id": command.order_id})
                    return fresh
                shipment = await tx.shipments.by_order(command.order_id)
                assert shipment is not None
        if shipment.status is not ShipmentStatus.CANCELLED:
            raise FailedPrecondition("the order's shipment was dispatched already")
        return shipment

    async def get_shipment(self, query: GetShipment) -> Shipment:
        caller = auth.current_caller()
        query.validate()
        async with self.uow.read() as tx:
            shipment = await tx.shipments.by_order(query.order_id)
        if shipment is None or not auth.may_read(caller, shipment.user_id, "order"):
            raise NotFound("no shipment for this order")  # others' orders are not disclosed
        return shipment
