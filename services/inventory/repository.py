"""Inventory's tables and repository (SQLAlchemy Core over the service's own database).

Stock never goes negative because every change to a counter is one conditional
``UPDATE`` whose ``WHERE`` re-checks the bound (PostgreSQL re-evaluates it on the locked,
newest row version under READ COMMITTED; SQLite runs one writer at a time), and the
table's CHECK constraints refuse anything that slips past. Rows are always locked in SKU
order, so concurrent multi-line reservations cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Update,
    insert,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory.domain import Line, Reservation, Status, StockLevel

metadata = MetaData()

stock = Table(
    "stock",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("available", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("sold", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    CheckConstraint("available >= 0", name="ck_stock_available"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved"),
    CheckConstraint("sold >= 0", name="ck_stock_sold"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("reservation_id", String(36), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at_us", BigInteger, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    # One reservation per order: concurrent replays of ReserveStock cannot both hold stock.
    UniqueConstraint("order_id", name="uq_reservations_order_id"),
    Index("ix_reservations_due", "status", "expires_at_us"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column(
        "reservation_id",
        String(36),
        ForeignKey("reservations.reservation_id"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unavailable", Boolean, nullable=False),
)


def _in_lock_order(lines: Iterable[Line]) -> list[Line]:
    return sorted(lines, key=lambda line: line.sku)


class InventoryRepository:
    """Stock levels and reservations, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _changed(self, statement: Update) -> int:
        """Runs an UPDATE; returns how many rows matched its WHERE clause."""
        result = cast("CursorResult[Any]", await self._session.execute(statement))
        return int(result.rowcount)

    # -- stock -------------------------------------------------------------------------

    async def stock_level(self, sku: str) -> StockLevel | None:
        row = (await self._session.execute(select(stock).where(stock.c.sku == sku))).first()
        if row is None:
            return None
        m = row._mapping
        return StockLevel(m["sku"], m["available"], m["reserved"], m["sold"], m["updated_at_us"])

    async def take_all(self, lines: tuple[Line, ...], now_us: int) -> tuple[str, ...]:
        """Moves every line's units from available to reserved, or none of them.

        Returns the SKUs that lacked stock (in request order); when there are any,
        nothing was taken.
        """
        short: set[str] = set()
        # An error escaping here rolls back the caller's whole transaction, savepoint and all.
        savepoint = await self._session.begin_nested()
        for line in _in_lock_order(lines):
            taken = await self._changed(
                update(stock)
                .where(stock.c.sku == line.sku, stock.c.available >= line.quantity)
                .values(
                    available=stock.c.available - line.quantity,
                    reserved=stock.c.reserved + line.quantity,
                    updated_at_us=now_us,
                )
            )
            if taken != 1:
                short.add(line.sku)
        if short:
            await savepoint.rollback()
        else:
            await savepoint.commit()
        return tuple(line.sku for line in lines if line.sku in short)

    async def put_back(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Moves held units back from reserved to available."""
        for line in _in_lock_order(lines):
            await self._session.execute(
                update(stock)
                .where(stock.c.sku == line.sku)
                .values(
                    available=stock.c.available + line.quantity,
                    reserved=stock.c.reserved - line.quantity,
                    updated_at_us=now_us,
                )
            )

    async def sell(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Moves held units from reserved to sold."""
        for line in _in_lock_order(lines):
            await self._session.execute(
                update(stock)
                .where(stock.c.sku == line.sku)
                .values(
                    reserved=stock.c.reserved - line.quantity,
                    sold=stock.c.sold + line.quantity,
                    updated_at_us=now_us,
                )
            )

    async def restock(self, lines: tuple[Line, ...], now_us: int) -> None:
        """Moves sold units back to available (an order cancelled before shipping)."""
        for line in _in_lock_order(lines):
            await self._session.execute(
                update(stock)
                .where(stock.c.sku == line.sku)
                .values(
                    available=stock.c.available + line.quantity,
                    sold=stock.c.sold - line.quantity,
                    updated_at_us=now_us,
                )
            )

    async def add_available(self, sku: str, delta: int, now_us: int) -> bool:
        """Adds ``delta`` to an existing SKU's available units unless that goes below zero."""
        changed = await self._changed(
            update(stock)
            .where(stock.c.sku == sku, stock.c.available + delta >= 0)
            .values(available=stock.c.available + delta, updated_at_us=now_us)
        )
        return changed == 1

    async def create_stock(self, sku: str, available: int, now_us: int) -> bool:
        """Creates a SKU's stock level; False when a concurrent call created it first."""
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(stock).values(
                        sku=sku, available=available, reserved=0, sold=0, updated_at_us=now_us
                    )
                )
        except IntegrityError:
            return False
        return True

    # -- reservations ------------------------------------------------------------------

    async def claim(self, reservation: Reservation) -> bool:
        """Inserts the reservation of an order; False when the order already has one.

        On PostgreSQL a concurrent claim of the same order waits here for the first
        one's transaction and then loses on the unique constraint.
        """
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(reservations).values(
                        reservation_id=reservation.reservation_id,
                        order_id=reservation.order_id,
                        status=reservation.status.value,
                        expires_at_us=reservation.expires_at_us,
                        created_at_us=reservation.created_at_us,
                        updated_at_us=reservation.updated_at_us,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def add_lines(self, reservation: Reservation) -> None:
        unavailable = set(reservation.unavailable_skus)
        await self._session.execute(
            insert(reservation_lines),
            [
                {
                    "reservation_id": reservation.reservation_id,
                    "position": position,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unavailable": line.sku in unavailable,
                }
                for position, line in enumerate(reservation.lines)
            ],
        )

    async def fail(self, reservation_id: str, now_us: int) -> None:
        """Marks a just-claimed reservation FAILED (it holds nothing, so it never expires)."""
        await self._session.execute(
            update(reservations)
            .where(reservations.c.reservation_id == reservation_id)
            .values(status=Status.FAILED.value, expires_at_us=None, updated_at_us=now_us)
        )

    async def transition(
        self,
        order_id: str,
        source: Status,
        target: Status,
        now_us: int,
        *,
        alive_at_us: int | None = None,
        expired_by_us: int | None = None,
    ) -> bool:
        """Moves an order's reservation from ``source`` to ``target``; False if it was not
        in ``source`` (or, with ``alive_at_us``/``expired_by_us``, not unexpired/expired
        at that time). The row lock this takes orders concurrent transitions."""
        statement = update(reservations).where(
            reservations.c.order_id == order_id, reservations.c.status == source.value
        )
        if alive_at_us is not None:
            statement = statement.where(reservations.c.expires_at_us > alive_at_us)
        if expired_by_us is not None:
            statement = statement.where(reservations.c.expires_at_us <= expired_by_us)
        changed = await self._changed(statement.values(status=target.value, updated_at_us=now_us))
        return changed == 1

    async def reservation(self, order_id: str) -> Reservation | None:
        row = (
            await self._session.execute(
                select(reservations).where(reservations.c.order_id == order_id)
            )
        ).first()
        if row is None:
            return None
        m = row._mapping
        lines = (
            await self._session.execute(
                select(
                    reservation_lines.c.sku,
                    reservation_lines.c.quantity,
                    reservation_lines.c.unavailable,
                )
                .where(reservation_lines.c.reservation_id == m["reservation_id"])
                .order_by(reservation_lines.c.position)
            )
        ).all()
        return Reservation(
            reservation_id=m["reservation_id"],
            order_id=m["order_id"],
            status=Status(m["status"]),
            lines=tuple(Line(sku, quantity) for sku, quantity, _ in lines),
            unavailable_skus=tuple(sku for sku, _, unavailable in lines if unavailable),
            expires_at_us=m["expires_at_us"],
            created_at_us=m["created_at_us"],
            updated_at_us=m["updated_at_us"],
        )

    async def due(self, now_us: int, limit: int) -> list[str]:
        """Orders whose RESERVED reservation expired by ``now_us``, oldest first."""
        result = await self._session.execute(
            select(reservations.c.order_id)
            .where(
                reservations.c.status == Status.RESERVED.value,
                reservations.c.expires_at_us <= now_us,
            )
            .order_by(reservations.c.expires_at_us)
            .limit(limit)
        )
        return [order_id for (order_id,) in result]
