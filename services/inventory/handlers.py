"""Inventory's use cases: each runs in one transaction with the events it publishes."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.inventory import messages
from services.inventory.domain import (
    EXPIRED_REASON,
    RELEASED_REASON,
    AdjustStock,
    CommitReservation,
    GetStock,
    ReleaseReservation,
    Reservation,
    ReserveStock,
    Status,
    StockLevel,
)
from services.inventory.repository import InventoryRepository
from services.platform import auth, outbox
from services.platform.db import Database
from services.platform.errors import Conflict, FailedPrecondition, NotFound

#: The outbox stream inventory publishes on.
STREAM = "inventory"
#: The only caller allowed to reserve, release and commit stock.
ORDER_SERVICE = "order"


def _now_us() -> int:
    return time.time_ns() // 1000


class Inventory:
    """Stock levels and the reservations the order saga makes, releases and commits."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], int] = _now_us,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._db = db
        self._clock = clock
        self._new_id = new_id

    async def get_stock(self, query: GetStock) -> StockLevel:
        query.validate()
        async with self._db.transaction() as session:
            level = await InventoryRepository(session).stock_level(query.sku)
        if level is None:
            raise NotFound(f"SKU {query.sku!r} has never been stocked")
        return level

    async def reserve(self, command: ReserveStock) -> Reservation:
        """Holds stock for every line or for none; a FAILED reservation is a result, too."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self._clock()
        async with self._db.transaction() as session:
            repository = InventoryRepository(session)
            existing = await repository.reservation(command.order_id)
            if existing is None:
                fresh = Reservation(
                    reservation_id=self._new_id(),
                    order_id=command.order_id,
                    status=Status.RESERVED,
                    lines=command.lines,
                    unavailable_skus=(),
                    expires_at_us=now + command.ttl_us,
                    created_at_us=now,
                    updated_at_us=now,
                )
                if await repository.claim(fresh):
                    return await self._hold(session, repository, fresh)
                # A concurrent call for the same order committed first: this is a replay.
                existing = await repository.reservation(command.order_id)
                if existing is None:
                    raise Conflict("a concurrent reservation for this order was rolled back")
        if not existing.requested(command.lines):
            raise FailedPrecondition(
                f"order {command.order_id!r} already has a reservation for other lines"
            )
        return existing

    async def _hold(
        self, session: AsyncSession, repository: InventoryRepository, fresh: Reservation
    ) -> Reservation:
        short = await repository.take_all(fresh.lines, fresh.created_at_us)
        if short:
            failed = dataclasses.replace(
                fresh, status=Status.FAILED, unavailable_skus=short, expires_at_us=None
            )
            await repository.fail(failed.reservation_id, failed.updated_at_us)
            await repository.add_lines(failed)
            event = messages.stock_reservation_failed(failed)
            await outbox.record(session, STREAM, event, failed.order_id)
            return failed
        await repository.add_lines(fresh)
        await outbox.record(session, STREAM, messages.stock_reserved(fresh), fresh.order_id)
        return fresh

    async def release(self, command: ReleaseReservation) -> Reservation | None:
        """RESERVED → RELEASED, or COMMITTED → RELEASED with the sold units restocked (an
        order cancelled before it shipped). Idempotent: a released, expired or failed
        reservation is returned unchanged, and an order with no reservation gets ``None``
        (compensating a reservation that never happened is not an error for the saga)."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self._clock()
        async with self._db.transaction() as session:
            repository = InventoryRepository(session)
            released = await repository.transition(
                command.order_id, Status.RESERVED, Status.RELEASED, now
            )
            reservation = await repository.reservation(command.order_id)
            if released and reservation is not None:
                await repository.put_back(reservation.lines, now)
            elif reservation is not None and reservation.status is Status.COMMITTED:
                released = await repository.transition(
                    command.order_id, Status.COMMITTED, Status.RELEASED, now
                )
                if released:
                    await repository.restock(reservation.lines, now)
                    reservation = await repository.reservation(command.order_id)
            if released and reservation is not None:
                event = messages.stock_released(reservation, command.reason or RELEASED_REASON)
                await outbox.record(session, STREAM, event, reservation.order_id)
        return reservation

    async def commit(self, command: CommitReservation) -> Reservation:
        """RESERVED → COMMITTED. Idempotent; past its expiry a reservation expires instead."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self._clock()
        async with self._db.transaction() as session:
            repository = InventoryRepository(session)
            committed = await repository.transition(
                command.order_id, Status.RESERVED, Status.COMMITTED, now, alive_at_us=now
            )
            reservation = await repository.reservation(command.order_id)
            if reservation is None:
                raise NotFound(f"order {command.order_id!r} has no reservation")
            if committed:
                await repository.sell(reservation.lines, now)
                event = messages.stock_committed(reservation)
                await outbox.record(session, STREAM, event, reservation.order_id)
            elif reservation.status is Status.RESERVED:
                # Expired but not swept yet: expire it now (committed with this
                # transaction) so the answer does not depend on the sweeper's timing.
                reservation = await self._expire(
                    session, repository, command.order_id, now
                ) or await repository.reservation(command.order_id)
        if reservation is None or reservation.status is not Status.COMMITTED:
            state = "gone" if reservation is None else reservation.status.value.lower()
            raise FailedPrecondition(f"the reservation is {state} and cannot be committed")
        return reservation

    async def adjust(self, command: AdjustStock) -> StockLevel:
        """Adds ``delta`` to a SKU's available units, creating the SKU on a first restock."""
        auth.require_admin()
        command.validate()
        now = self._clock()
        async with self._db.transaction() as session:
            repository = InventoryRepository(session)
            if not await repository.add_available(command.sku, command.delta, now):
                if command.delta < 0:
                    current = await repository.stock_level(command.sku)
                    if current is None:
                        raise NotFound(f"SKU {command.sku!r} has never been stocked")
                    raise FailedPrecondition(
                        f"only {current.available} units of {command.sku!r} are available"
                    )
                created = await repository.create_stock(command.sku, command.delta, now)
                # Lost a race to create the row: it exists now, so adding cannot fail.
                if not created and not await repository.add_available(
                    command.sku, command.delta, now
                ):
                    raise Conflict("the stock level changed concurrently; retry")
            level = await repository.stock_level(command.sku)
            if level is None:  # pragma: no cover - the row was just written
                raise Conflict("the stock level vanished concurrently; retry")
            await outbox.record(
                session, STREAM, messages.stock_adjusted(command, level), command.sku
            )
        return level

    async def expire_due(self, limit: int = 100) -> int:
        """Expires up to ``limit`` reservations past their expiry (one transaction each,
        so a long backlog never holds locks for long); returns how many were due."""
        now = self._clock()
        async with self._db.transaction() as session:
            due = await InventoryRepository(session).due(now, limit)
        for order_id in due:
            async with self._db.transaction() as session:
                await self._expire(session, InventoryRepository(session), order_id, now)
        return len(due)

    async def _expire(
        self, session: AsyncSession, repository: InventoryRepository, order_id: str, now: int
    ) -> Reservation | None:
        """RESERVED (and past expiry) → EXPIRED, stock back; None if it changed meanwhile."""
        if not await repository.transition(
            order_id, Status.RESERVED, Status.EXPIRED, now, expired_by_us=now
        ):
            return None
        reservation = await repository.reservation(order_id)
        if reservation is None:  # pragma: no cover - the row was just updated
            return None
        await repository.put_back(reservation.lines, now)
        event = messages.stock_released(reservation, EXPIRED_REASON)
        await outbox.record(session, STREAM, event, order_id)
        return reservation
