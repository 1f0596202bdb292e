"""Inventory's repositories on a database transaction (SQLAlchemy Core, built once).

Stock never goes negative because every change to a counter is one conditional
``UPDATE`` whose ``WHERE`` re-checks the bound (PostgreSQL re-evaluates it on the locked,
newest row version under READ COMMITTED; SQLite runs one writer at a time), and the
table's CHECK constraints refuse anything that slips past. Rows are always locked in SKU
order, so concurrent multi-line reservations cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, String, bindparam, insert, select, update
from sqlalchemy.sql import Executable

from services.inventory.codec import (
    reservation_from_rows,
    reservation_line_rows,
    reservation_row,
    stock_from_row,
)
from services.inventory.domain import Line, Reservation, Status, StockLevel
from services.inventory.tables import reservation_lines, reservations, stock
from services.platform.db import insert_new
from services.platform.uow import SqlRepository, SqlTx

#: The outbox stream inventory publishes on.
STREAM = "inventory"

_QUANTITY = bindparam("quantity", type_=BigInteger())
_NOW = bindparam("now", type_=BigInteger())
_SKU = bindparam("b_sku", type_=String())
_LEVEL = select(stock).where(stock.c.sku == bindparam("sku"))
_TAKE = (
    update(stock)
    .where(stock.c.sku == _SKU, stock.c.available >= _QUANTITY)
    .values(
        available=stock.c.available - _QUANTITY,
        reserved=stock.c.reserved + _QUANTITY,
        updated_at_us=_NOW,
    )
)
_PUT_BACK = (
    update(stock)
    .where(stock.c.sku == _SKU)
    .values(
        available=stock.c.available + _QUANTITY,
        reserved=stock.c.reserved - _QUANTITY,
        updated_at_us=_NOW,
    )
)
_SELL = (
    update(stock)
    .where(stock.c.sku == _SKU)
    .values(
        reserved=stock.c.reserved - _QUANTITY, sold=stock.c.sold + _QUANTITY, updated_at_us=_NOW
    )
)
_RESTOCK = (
    update(stock)
    .where(stock.c.sku == _SKU)
    .values(
        available=stock.c.available + _QUANTITY, sold=stock.c.sold - _QUANTITY, updated_at_us=_NOW
    )
)
_ADD_AVAILABLE = (
    update(stock)
    .where(stock.c.sku == _SKU, stock.c.available + _QUANTITY >= 0)
    .values(available=stock.c.available + _QUANTITY, updated_at_us=_NOW)
)
_CREATE = insert_new(stock)

_CLAIM = insert_new(reservations)
_ADD_LINE = insert(reservation_lines)
_MARK_UNAVAILABLE = (
    update(reservation_lines)
    .where(
        reservation_lines.c.reservation_id == bindparam("b_reservation_id"),
        reservation_lines.c.sku == bindparam("b_sku"),
    )
    .values(unavailable=True)
)
_FAIL = (
    update(reservations)
    .where(reservations.c.reservation_id == bindparam("b_reservation_id"))
    .values(status=Status.FAILED.value, expires_at_us=None, updated_at_us=_NOW)
)
_TRANSITION = (
    update(reservations)
    .where(
        reservations.c.order_id == bindparam("b_order_id"),
        reservations.c.status == bindparam("source"),
    )
    .values(status=bindparam("target"), updated_at_us=_NOW)
)
_TRANSITION_ALIVE = _TRANSITION.where(reservations.c.expires_at_us > bindparam("at"))
_TRANSITION_EXPIRED = _TRANSITION.where(reservations.c.expires_at_us <= bindparam("at"))
#: A reservation with its lines, in one statement (a reservation's row once per line).
_RESERVATION = (
    select(
        reservations,
        reservation_lines.c.sku,
        reservation_lines.c.quantity,
        reservation_lines.c.unavailable,
    )
    .select_from(reservations.outerjoin(reservation_lines))
    .where(reservations.c.order_id == bindparam("order_id"))
    .order_by(reservation_lines.c.position)
)
_DUE = (
    select(reservations.c.order_id)
    .where(
        reservations.c.status == Status.RESERVED.value,
        reservations.c.expires_at_us <= bindparam("now"),
    )
    .order_by(reservations.c.expires_at_us)
    .limit(bindparam("limit"))
)


def _in_lock_order(lines: Iterable[Line]) -> list[Line]:
    return sorted(lines, key=lambda line: line.sku)


class _Short(Exception):
    """Some line lacked stock: undo the lines already taken."""


class SqlStockLevels(SqlRepository):
    async def get(self, sku: str) -> StockLevel | None:
        row = await self._tx.fetch_one(_LEVEL, {"sku": sku})
        return None if row is None else stock_from_row(row)

    async def take_all(self, lines: tuple[Line, ...], now_us: int) -> tuple[str, ...]:
        """Takes every line's quantity, or none (the SKUs short of it). One line needs no
        savepoint: its one statement takes the stock or changes nothing."""
        if len(lines) == 1:
            line = lines[0]
            params = {"b_sku": line.sku, "quantity": line.quantity, "now": now_us}
            return () if await self._tx.execute(_TAKE, params) == 1 else (line.sku,)
        short: set[str] = set()
        try:
            async with self._tx.savepoint():
                for line in _in_lock_order(lines):
                    params = {"b_sku": line.sku, "quantity": line.quantity, "now": now_us}
                    if await self._tx.execute(_TAKE, params) != 1:
                        short.add(line.sku)
                if short:
                    raise _Short
        except _Short:
            pass
        return tuple(line.sku for line in lines if line.sku in short)

    async def _each(self, statement: Executable, lines: tuple[Line, ...], now_us: int) -> None:
        for line in _in_lock_order(lines):
            params = {"b_sku": line.sku, "quantity": line.quantity, "now": now_us}
            await self._tx.execute(statement, params)

    async def put_back(self, lines: tuple[Line, ...], now_us: int) -> None:
        await self._each(_PUT_BACK, lines, now_us)

    async def sell(self, lines: tuple[Line, ...], now_us: int) -> None:
        await self._each(_SELL, lines, now_us)

    async def restock(self, lines: tuple[Line, ...], now_us: int) -> None:
        await self._each(_RESTOCK, lines, now_us)

    async def add_available(self, sku: str, delta: int, now_us: int) -> bool:
        params = {"b_sku": sku, "quantity": delta, "now": now_us}
        return await self._tx.execute(_ADD_AVAILABLE, params) == 1

    async def create(self, sku: str, available: int, now_us: int) -> bool:
        row = {"sku": sku, "available": available, "reserved": 0, "sold": 0}
        return await self._insert_new(_CREATE, {**row, "updated_at_us": now_us})


class SqlReservations(SqlRepository):
    async def claim(self, reservation: Reservation) -> bool:
        return await self._insert_new(_CLAIM, reservation_row(reservation))

    async def add_lines(self, reservation: Reservation) -> None:
        await self._tx.execute_many(_ADD_LINE, reservation_line_rows(reservation))

    async def fail(self, reservation: Reservation) -> None:
        """Marks ``reservation`` (its lines added already) FAILED, and its unavailable
        lines as such."""
        params = {"b_reservation_id": reservation.reservation_id, "now": reservation.updated_at_us}
        await self._tx.execute(_FAIL, params)
        await self._tx.execute_many(
            _MARK_UNAVAILABLE,
            [
                {"b_reservation_id": reservation.reservation_id, "b_sku": sku}
                for sku in reservation.unavailable_skus
            ],
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
        """The row lock this takes orders concurrent transitions."""
        params = {
            "b_order_id": order_id,
            "source": source.value,
            "target": target.value,
            "now": now_us,
        }
        statement = _TRANSITION
        if alive_at_us is not None:
            statement, params["at"] = _TRANSITION_ALIVE, alive_at_us
        elif expired_by_us is not None:
            statement, params["at"] = _TRANSITION_EXPIRED, expired_by_us
        return await self._tx.execute(statement, params) == 1

    async def get(self, order_id: str) -> Reservation | None:
        rows = await self._tx.fetch_all(_RESERVATION, {"order_id": order_id})
        if not rows:
            return None
        return reservation_from_rows(rows[0], [row for row in rows if row["sku"] is not None])

    async def due(self, now_us: int, limit: int) -> list[str]:
        rows = await self._tx.fetch_all(_DUE, {"now": now_us, "limit": limit})
        return [row["order_id"] for row in rows]


class SqlInventoryTx(SqlTx):
    """Inventory's repositories in one transaction."""

    stream = STREAM
    stock: SqlStockLevels
    reservations: SqlReservations
