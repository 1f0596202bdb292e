"""A fake unit of work for fulfillment's handlers, and a carrier that counts its parcels."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.fulfillment.carrier import Handover
from services.fulfillment.domain import Shipment
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork


@dataclass
class FulfillmentState:
    #: Shipments by order id: one per order, as the unique constraint keeps it.
    shipments: dict[str, Shipment] = field(default_factory=dict)
    #: Shipments a concurrent transaction commits just before the next ``add`` (a race).
    rivals: list[Shipment] = field(default_factory=list)


class FakeShipments(FakeRepository[FulfillmentState]):
    async def by_order(self, order_id: str) -> Shipment | None:
        return self._state.shipments.get(order_id)

    async def add(self, shipment: Shipment) -> bool:
        for rival in self._state.rivals:
            self._state.shipments.setdefault(rival.order_id, rival)
        self._state.rivals.clear()
        if shipment.order_id in self._state.shipments:
            return False
        self._state.shipments[shipment.order_id] = shipment
        return True


class FakeFulfillmentTx(FakeTx):
    def __init__(self, state: FulfillmentState, outbox: FakeOutbox) -> None:
        super().__init__(outbox)
        self.shipments = FakeShipments(state)


def fake_fulfillment_uow() -> FakeUnitOfWork[FulfillmentState, FakeFulfillmentTx]:
    return FakeUnitOfWork(FulfillmentState(), FakeFulfillmentTx)


class CountingCarrier:
    """Hands every parcel over as ``TEST-<shipment id>``; keeps the shipments it took."""

    name = "Test Carrier"

    def __init__(self) -> None:
        self.parcels: list[Shipment] = []

    def dispatch(self, shipment: Shipment) -> Handover:
        self.parcels.append(shipment)
        return Handover(self.name, f"TEST-{shipment.shipment_id}")
