"""Fulfillment's repositories on a database transaction (SQLAlchemy Core, built once)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select

from services.fulfillment.codec import shipment_from_row
from services.fulfillment.domain import Shipment
from services.fulfillment.tables import shipments
from services.platform.db import Database, Transaction
from services.platform.uow import SqlRepository, SqlTx, SqlUnitOfWork

#: The outbox stream fulfillment publishes on.
STREAM = "fulfillment"

_BY_ORDER = select(shipments).where(shipments.c.order_id == bindparam("order_id"))
_ADD = insert(shipments)


class SqlShipments(SqlRepository):
    async def by_order(self, order_id: str) -> Shipment | None:
        row = await self._tx.fetch_one(_BY_ORDER, {"order_id": order_id})
        return None if row is None else shipment_from_row(row)

    async def add(self, shipment: Shipment) -> bool:
        row = {
            "shipment_id": shipment.shipment_id,
            "order_id": shipment.order_id,
            "user_id": shipment.user_id,
            "status": shipment.status.value,
            "shipping_address": shipment.shipping_address,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "created_at_us": shipment.created_at_us,
            "dispatched_at_us": shipment.dispatched_at_us,
        }
        return await self._insert_new(_ADD, row)


class SqlFulfillmentTx(SqlTx):
    """Fulfillment's repositories in one transaction."""

    __slots__ = ("shipments",)

    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx, STREAM)
        self.shipments = SqlShipments(tx)


def unit_of_work(db: Database) -> SqlUnitOfWork[SqlFulfillmentTx]:
    return SqlUnitOfWork(db, SqlFulfillmentTx)
