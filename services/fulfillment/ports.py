"""What fulfillment's handlers need from storage (fakes in tests/support/fakes/fulfillment.py).

The carrier, the other port, is in ``carrier.py``.
"""

from __future__ import annotations

from typing import Protocol

from services.fulfillment.domain import Shipment
from services.platform.uow import Tx, UnitOfWork


class Shipments(Protocol):
    """One shipment per order (a unique ``order_id``)."""

    async def by_order(self, order_id: str) -> Shipment | None: ...

    async def add(self, shipment: Shipment) -> bool:
        """Inserts ``shipment``; False when its order already has one (a concurrent
        OrderConfirmed or CancelShipment committed it first)."""


class FulfillmentTx(Tx, Protocol):
    @property
    def shipments(self) -> Shipments: ...


FulfillmentUnitOfWork = UnitOfWork[FulfillmentTx]
