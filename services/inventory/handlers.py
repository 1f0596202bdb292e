"""Inventory's use cases: each runs in one transaction with the events it publishes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from services.inventory import codec
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
from services.inventory.ports import InventoryTx, InventoryUnitOfWork
from services.platform import auth
from services.platform.clock import now_us
from services.platform.errors import Conflict, FailedPrecondition, NotFound
from services.platform.ids import random_id

#: The only caller allowed to reserve, release and commit stock.
ORDER_SERVICE = "order"


@dataclass(slots=True, eq=False)
class Inventory:
    """Stock levels and the reservations the order saga makes, releases and commits."""

    uow: InventoryUnitOfWork
    _: KW_ONLY
    clock: Callable[[], int] = now_us
    new_id: Callable[[], str] = random_id

    async def get_stock(self, query: GetStock) -> StockLevel:
        query.validate()
        async with self.uow.read() as tx:
            level = await tx.stock.get(query.sku)
        if level is None:
            raise NotFound(f"SKU {query.sku!r} has never been stocked")
        return level

    async def reserve(self, command: ReserveStock) -> Reservation:
        """Holds stock for every line or for none; a FAILED reservation is a result, too."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self.clock()
        fresh = Reservation(
            reservation_id=self.new_id(),
            order_id=command.order_id,
            status=Status.RESERVED,
            lines=command.lines,
            unavailable_skus=(),
            expires_at_us=now + command.ttl_us,
            created_at_us=now,
            updated_at_us=now,
        )
        async with self.uow.write() as tx:
            if await tx.reservations.claim(fresh):
                return await self._hold(tx, fresh)
            # The order has a reservation: a replay, or a concurrent call for it committed first.
            existing = await tx.reservations.get(command.order_id)
            if existing is None:
                raise Conflict("a concurrent reservation for this order was rolled back")
        if not existing.requested(command.lines):
            raise FailedPrecondition(
                f"order {command.order_id!r} already has a reservation for other lines"
            )
        return existing

    async def _hold(self, tx: InventoryTx, fresh: Reservation) -> Reservation:
        # Every order takes the same few stock rows: their locks are taken by the last
        # statement before the COMMIT, so nothing else waits behind them. The event is
        # recorded first, as if the stock were there, and withdrawn when it is not.
        await tx.reservations.add_lines(fresh)
        reserved = await tx.outbox.record(codec.stock_reserved(fresh), fresh.order_id)
        short = await tx.stock.take_all(fresh.lines, fresh.created_at_us)
        if not short:
            return fresh
        await tx.outbox.withdraw(reserved)
        failed = dataclasses.replace(
            fresh, status=Status.FAILED, unavailable_skus=short, expires_at_us=None
        )
        await tx.reservations.fail(failed)
        await tx.outbox.record(codec.stock_reservation_failed(failed), failed.order_id)
        return failed

    async def release(self, command: ReleaseReservation) -> Reservation | None:
        """RESERVED → RELEASED, or COMMITTED → RELEASED with the sold units restocked (an
        order cancelled before it shipped). Idempotent: a released, expired or failed
        reservation is returned unchanged, and an order with no reservation gets ``None``
        (compensating a reservation that never happened is not an error for the saga)."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self.clock()
        async with self.uow.write() as tx:
            released = await tx.reservations.transition(
                command.order_id, Status.RESERVED, Status.RELEASED, now
            )
            reservation = await tx.reservations.get(command.order_id)
            if released and reservation is not None:
                await tx.stock.put_back(reservation.lines, now)
            elif reservation is not None and reservation.status is Status.COMMITTED:
                released = await tx.reservations.transition(
                    command.order_id, Status.COMMITTED, Status.RELEASED, now
                )
                if released:
                    await tx.stock.restock(reservation.lines, now)
                    reservation = await tx.reservations.get(command.order_id)
            if released and reservation is not None:
                event = codec.stock_released(reservation, command.reason or RELEASED_REASON)
                await tx.outbox.record(event, reservation.order_id)
        return reservation

    async def commit(self, command: CommitReservation) -> Reservation:
        """RESERVED → COMMITTED. Idempotent; past its expiry a reservation expires instead."""
        auth.require_service(ORDER_SERVICE)
        command.validate()
        now = self.clock()
        async with self.uow.write() as tx:
            committed = await tx.reservations.transition(
                command.order_id, Status.RESERVED, Status.COMMITTED, now, alive_at_us=now
            )
            reservation = await tx.reservations.get(command.order_id)
            if reservation is None:
                raise NotFound(f"order {command.order_id!r} has no reservation")
            if committed:
                # The event first: the stock row's lock is held only until the COMMIT.
                await tx.outbox.record(codec.stock_committed(reservation), reservation.order_id)
                await tx.stock.sell(reservation.lines, now)
            elif reservation.status is Status.RESERVED:
                # Expired but not swept yet: expire it now (committed with this
                # transaction) so the answer does not depend on the sweeper's timing.
                reservation = await self._expire(
                    tx, command.order_id, now
                ) or await tx.reservations.get(command.order_id)
        if reservation is None or reservation.status is not Status.COMMITTED:
            state = "gone" if reservation is None else reservation.status.value.lower()
            raise FailedPrecondition(f"the reservation is {state} and cannot be committed")
        return reservation

    async def adjust(self, command: AdjustStock) -> StockLevel:
        """Adds ``delta`` to a SKU's available units, creating the SKU on a first restock."""
        auth.require_admin()
        command.validate()
        now = self.clock()
        async with self.uow.write() as tx:
            if not await tx.stock.add_available(command.sku, command.delta, now):
                if command.delta < 0:
                    current = await tx.stock.get(command.sku)
                    if current is None:
                        raise NotFound(f"SKU {command.sku!r} has never been stocked")
                    raise FailedPrecondition(
                        f"only {current.available} units of {command.sku!r} are available"
                    )
                created = await tx.stock.create(command.sku, command.delta, now)
                # Lost a race to create the row: it exists now, so adding cannot fail.
                if not created and not await tx.stock.add_available(
                    command.sku, command.delta, now
                ):
                    raise Conflict("the stock level changed concurrently; retry")
            level = await tx.stock.get(command.sku)
            if level is None:  # pragma: no cover - the row was just written
                raise Conflict("the stock level vanished concurrently; retry")
            await tx.outbox.record(codec.stock_adjusted(command, level), command.sku)
        return level

    async def expire_due(self, limit: int = 100) -> int:
        """Expires up to ``limit`` reservations past their expiry (one transaction each,
        so a long backlog never holds locks for long); returns how many were due."""
        now = self.clock()
        async with self.uow.read() as tx:
            due = await tx.reservations.due(now, limit)
        for order_id in due:
            async with self.uow.write() as tx:
                await self._expire(tx, order_id, now)
        return len(due)

    async def _expire(self, tx: InventoryTx, order_id: str, now: int) -> Reservation | None:
        """RESERVED (and past expiry) → EXPIRED, stock back; None if it changed meanwhile."""
        if not await tx.reservations.transition(
            order_id, Status.RESERVED, Status.EXPIRED, now, expired_by_us=now
        ):
            return None
        reservation = await tx.reservations.get(order_id)
        if reservation is None:  # pragma: no cover - the row was just updated
            return None
        await tx.stock.put_back(reservation.lines, now)
        event = codec.stock_released(reservation, EXPIRED_REASON)
        await tx.outbox.record(event, order_id)
        return reservation
