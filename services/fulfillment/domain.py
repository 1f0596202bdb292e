"""Fulfillment's domain: shipments of confirmed orders. Standard library only.

One shipment per order. It is created when the order is confirmed and handed to the
carrier at once (the simulated carrier never keeps a parcel waiting), so a shipment is
CREATED only inside the transaction that creates it; both steps are published as events.

Fulfillment is the one authority on "ship" versus "cancel" for a confirmed order: a
CancelShipment that comes first records the order's shipment as CANCELLED (and a later
OrderConfirmed finds it and dispatches nothing); one that comes after the dispatch is
refused. The unique shipment per order decides a race between the two.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Annotated

from services.platform.validation import Text, Validated

MAX_ID = 64
OrderId = Annotated[str, Text(MAX_ID)]


class ShipmentStatus(enum.StrEnum):
    CREATED = "CREATED"
    DISPATCHED = "DISPATCHED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Shipment:
    """The shipment of one order; ``user_id`` is the order's owner (who may read it)."""

    shipment_id: str
    order_id: str
    user_id: str
    status: ShipmentStatus
    shipping_address: str  # the order's ShippingAddress, as JSON
    created_at_us: int
    carrier: str = ""
    tracking_number: str = ""
    dispatched_at_us: int | None = None

    def dispatch(self, carrier: str, tracking_number: str, now_us: int) -> Shipment:
        if self.status is ShipmentStatus.DISPATCHED:
            return self
        return dataclasses.replace(
            self,
            status=ShipmentStatus.DISPATCHED,
            carrier=carrier,
            tracking_number=tracking_number,
            dispatched_at_us=now_us,
        )


def cancelled(shipment_id: str, order_id: str, now_us: int) -> Shipment:
    """The shipment of an order cancelled before dispatch (owner and address unknown here:
    the order's OrderConfirmed may not have arrived)."""
    return Shipment(
        shipment_id=shipment_id,
        order_id=order_id,
        user_id="",
        status=ShipmentStatus.CANCELLED,
        shipping_address="{}",
        created_at_us=now_us,
    )


@dataclass(frozen=True, slots=True)
class CancelShipment(Validated):
    """Command (the order service's): never dispatch this order."""

    order_id: OrderId
    reason: Annotated[str, Text(500, required=False)]


@dataclass(frozen=True, slots=True)
class GetShipment(Validated):
    """Query: the shipment of an order."""

    order_id: OrderId
