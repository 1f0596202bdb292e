"""Fulfillment's domain: shipments of confirmed orders. Standard library only.

One shipment per order. It is created when the order is confirmed and handed to the
carrier at once (the simulated carrier never keeps a parcel waiting), so a shipment is
CREATED only inside the transaction that creates it; both steps are published as events.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from services.platform.errors import Validator

MAX_ID = 64


class ShipmentStatus(enum.StrEnum):
    CREATED = "CREATED"
    DISPATCHED = "DISPATCHED"


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


@dataclass(frozen=True, slots=True)
class GetShipment:
    """Query: the shipment of an order."""

    order_id: str

    def validate(self) -> None:
        v = Validator()
        v.text(self.order_id, "order_id", max_len=MAX_ID)
        v.raise_if_any()
