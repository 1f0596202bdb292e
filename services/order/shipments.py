"""The order service's bus handler: fulfillment's ShipmentDispatched → OrderShipped."""

from __future__ import annotations

import logging
from collections.abc import Callable

from emporium.fulfillment.v1 import events_pb2 as fulfillment_events

from services.order.domain import OrderStatus
from services.order.ports import OrderTx
from services.platform.clock import now_us
from services.platform.errors import FailedPrecondition
from services.platform.outbox import Envelope

log = logging.getLogger("emporium.order")


class ShipmentRecorder:
    """Consumer handler (group ``order``): appends OrderShipped in the consumer's transaction,
    so the inbox makes a redelivery harmless (``uow.event_handler(ShipmentRecorder())``)."""

    def __init__(self, clock: Callable[[], int] = now_us) -> None:
        self._clock = clock

    async def __call__(self, tx: OrderTx, envelope: Envelope) -> None:
        dispatched = fulfillment_events.ShipmentDispatched.FromString(envelope.payload)
        order_id = dispatched.order_id
        saga = await tx.sagas.lock(order_id)
        order = await tx.orders.load(order_id)
        if not order.exists or order.status is OrderStatus.PENDING:
            # Events of two streams may arrive out of order: retry until the order is confirmed.
            raise FailedPrecondition(f"order {order_id} is not confirmed yet")
        if order.status is OrderStatus.SHIPPED:
            return
        if order.status is OrderStatus.CONFIRMED and (saga is None or not saga.running):
            shipped = order.ship(
                dispatched.shipment_id,
                dispatched.carrier,
                dispatched.tracking_number,
                dispatched.occur_time.ToMicroseconds() or self._clock(),
            )
            await tx.orders.append(order, shipped)
            return
        log.warning(
            "shipment dispatched for an order being cancelled or ended; not recorded",
            extra={"order_id": order_id, "shipment_id": dispatched.shipment_id},
        )
