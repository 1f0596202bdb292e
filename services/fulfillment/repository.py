"""Fulfillment's repository: shipments in the caller's transaction (tables in tables.py)."""

from __future__ import annotations

from sqlalchemy import (
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.fulfillment import codec
from services.fulfillment.domain import Shipment
from services.fulfillment.tables import shipments


class ShipmentRepository:
    """Shipments, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_order(self, order_id: str) -> Shipment | None:
        query = select(shipments).where(shipments.c.order_id == order_id)
        row = (await self._session.execute(query)).first()
        return None if row is None else codec.shipment_from_row(row)

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
