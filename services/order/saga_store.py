"""The saga's persistence over the order's unit of work: a saga's state (its row and its
order's events), saves and the final transition compare-and-set on (owner, version), and
the order's ending event appended in the same transaction as the saga's end. The
statements themselves are in :mod:`services.order.saga_rows`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from services.order import codec
from services.order.domain import Event, Order, OrderStatus
from services.order.ports import LeaseLost, OrderTx, OrderUnitOfWork
from services.order.saga import CancelRequested, Outcome, SagaState
from services.platform.errors import Conflict

log = logging.getLogger("emporium.order.saga")

_MAX_CONFLICTS = 5


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds sagas (this instance's id) and for how long a lease lasts."""

    owner: str
    seconds: float

    def expiry(self, now_us: int) -> int:
        return now_us + int(self.seconds * 1_000_000)


def _ending(order: Order, state: SagaState, now_us: int) -> Event | None:
    """The event that ends ``order`` as the saga decided; ``None`` if it has ended already
    (another instance finished the same saga)."""
    status = order.status
    if state.outcome is Outcome.CONFIRMED and status is OrderStatus.PENDING:
        return order.confirm(state.payment_id, now_us)
    if state.outcome is Outcome.REJECTED and status is OrderStatus.PENDING:
        return order.reject(state.reason, state.payment_id, now_us)
    if state.outcome is Outcome.CANCELLED and status in (
        OrderStatus.PENDING,
        OrderStatus.CONFIRMED,
    ):
        return order.cancel(state.reason, now_us)
    return None


class SqlSagaStore:
    """:class:`~services.order.saga.SagaStore` over the order's unit of work, for the
    sagas ``lease.owner`` holds."""

    def __init__(self, uow: OrderUnitOfWork, clock: Callable[[], int], lease: Lease) -> None:
        self._uow = uow
        self._clock = clock
        self.lease = lease

    async def load(self, order_id: str) -> SagaState | None:
        """The saga if it is running and held here."""
        async with self._uow.read() as tx:
            row = await tx.sagas.held_running(order_id, self.lease.owner)
            if row is None:
                return None
            order = await tx.orders.load(order_id)
        return codec.saga_state(row, order)

    async def save(self, state: SagaState) -> SagaState:
        async with self._uow.write_one() as tx:
            saved, cancel_reason = await tx.sagas.save(state, self.lease.owner, self._clock())
        if not saved:
            raise LeaseLost(state.order_id)
        return replace(state, cancel_reason=cancel_reason, version=state.version + 1)

    async def finish(self, state: SagaState) -> None:
        assert state.outcome is not None
        for _ in range(_MAX_CONFLICTS):
            try:
                async with self._uow.write() as tx:
                    await self._finish(tx, state)
                return
            except Conflict:
                continue
        raise Conflict(f"order {state.order_id} kept changing concurrently")

    async def running(self) -> tuple[int, int | None]:
        """How many sagas run, and when the oldest of them started (µs, or ``None``)."""
        async with self._uow.read() as tx:
            return await tx.sagas.running()

    async def _finish(self, tx: OrderTx, state: SagaState) -> None:
        """Ends the saga first (its row's lock orders this end with cancellations; a
        refusal below rolls the end back), then appends the order's last event."""
        now = self._clock()
        ended, cancel_reason = await tx.sagas.end(state, self.lease.owner, now)
        if not ended:
            raise LeaseLost(state.order_id)
        if state.outcome is Outcome.CONFIRMED and cancel_reason is not None:
            raise CancelRequested(cancel_reason)
        order = await tx.orders.load(state.order_id)
        event = _ending(order, state, now)
        if event is None:
            log.warning(
                "saga ended an order that had ended already",
                extra={"order_id": state.order_id, "status": str(order.status)},
            )
        else:
            await tx.orders.append(order, event)

    async def renew(self, order_ids: Collection[str]) -> set[str]:
        """Extends the leases of ``order_ids`` held here, in one statement; returns those
        still held (the others were adopted elsewhere or have ended)."""
        if not order_ids:
            return set()
        async with self._uow.write_one() as tx:
            expires = self.lease.expiry(self._clock())
            return await tx.sagas.renew(order_ids, self.lease.owner, expires)

    async def adopt(self, limit: int) -> list[str]:
        """Claims up to ``limit`` running sagas that nobody holds (released, or their lease
        expired), oldest first; returns their ids. Each claim bumps the version, so the
        previous holder's writes fail from then on."""
        if limit <= 0:
            return []
        now = self._clock()
        async with self._uow.write() as tx:
            return await tx.sagas.adopt(limit, self.lease.owner, now, self.lease.expiry(now))

    async def release(self, order_ids: Collection[str]) -> None:
        """Gives up the leases of ``order_ids`` (a drain): any instance may adopt them now."""
        if not order_ids:
            return
        async with self._uow.write_one() as tx:
            await tx.sagas.release(order_ids, self.lease.owner)
