"""Fulfillment's repositories on a database transaction (SQLAlchemy Core, built once)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from services.fulfillment.codec import shipment_from_row, shipment_row
from services.fulfillment.domain import Shipment
from services.fulfillment.tables import shipments
from services.platform.db import insert_new
from services.platform.uow import SqlRepository, SqlTx

#: The outbox stream fulfillment publishes on.
STREAM = "fulfillment"

_BY_ORDER = select(shipments).where(shipments.c.order_id == bindparam("order_id"))
_ADD = insert_new(shipments)


class SqlShipments(SqlRepository):
    async def by_order(self, order_id: str) -> Shipment | None:
        row = await self._tx.fetch_one(_BY_ORDER, {"order_id": order_id})
        return None if row is None else shipment_from_row(row)

    async def add(self, shipment: Shipment) -> bool:
        return await self._insert_new(_ADD, shipment_row(shipment))


class SqlFulfillmentTx(SqlTx):
    """Fulfillment's repositories in one transaction."""

    stream = STREAM
    shipments: SqlShipments
