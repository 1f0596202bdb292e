"""Fulfillment's table and repository (SQLAlchemy Core over the service's own database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.fulfillment.domain import Shipment, ShipmentStatus

metadata = MetaData()

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", String(36), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("shipping_address", Text, nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("dispatched_at_us", BigInteger, nullable=True),
    UniqueConstraint("order_id", name="uq_shipments_order_id"),
)


def _shipment(row: Any) -> Shipment:
    m = row._mapping
    return Shipment(
        shipment_id=m["shipment_id"],
        order_id=m["order_id"],
        user_id=m["user_id"],
        status=ShipmentStatus(m["status"]),
        shipping_address=m["shipping_address"],
        created_at_us=m["created_at_us"],
        carrier=m["carrier"],
        tracking_number=m["tracking_number"],
        dispatched_at_us=m["dispatched_at_us"],
    )


class ShipmentRepository:
    """Shipments, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_order(self, order_id: str) -> Shipment | None:
        query = select(shipments).where(shipments.c.order_id == order_id)
        row = (await self._session.execute(query)).first()
        return None if row is None else _shipment(row)

    async def add(self, shipment: Shipment) -> bool:
        """Inserts ``shipment``; ``False`` when its order already has one."""
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(shipments).values(
                        shipment_id=shipment.shipment_id,
                        order_id=shipment.order_id,
                        user_id=shipment.user_id,
                        status=shipment.status.value,
                        shipping_address=shipment.shipping_address,
                        carrier=shipment.carrier,
                        tracking_number=shipment.tracking_number,
                        created_at_us=shipment.created_at_us,
                        dispatched_at_us=shipment.dispatched_at_us,
                    )
                )
        except IntegrityError:
            return False
        return True
