"""The saga's persistence: the ``sagas`` table, and ending the order in the same transaction.

Ownership (docs/saga.md): a saga row names its ``owner`` (an instance id) and the lease's
expiry; ``version`` grows with every write and every change of owner. Saves and the final
transition are compare-and-set on (owner, version); leases are renewed in one statement for
all held sagas; :meth:`SqlSagaStore.adopt` claims sagas whose lease expired or was released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.order import codec
from services.order.domain import Card, Event, Order, OrderStatus
from services.order.ports import LeaseLost
from services.order.repository import OnCommit, OrderStore
from services.order.saga import CancelRequested, Outcome, SagaState, Step
from services.order.tables import sagas
from services.platform.db import Database
from services.platform.errors import Conflict

log = logging.getLogger("emporium.order.saga")

RUNNING, ENDED = "running", "ended"
_MAX_CONFLICTS = 5


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds sagas (this instance's id) and for how long a lease lasts."""

    owner: str
    seconds: float

    def expiry(self, now_us: int) -> int:
        return now_us + int(self.seconds * 1_000_000)


async def create_saga(
    session: AsyncSession, order_id: str, card: Card, now_us: int, lease: Lease
) -> None:
    """Inserts a new saga at its first step, held by ``lease.owner`` (PlaceOrder's
    transaction)."""
    await session.execute(
        insert(sagas).values(
            order_id=order_id,
            step=Step.RESERVE.value,
            status=RUNNING,
            attempts=0,
            retry_deadline_us=None,
            payment_id="",
            authorized=False,
            captured=False,
            outcome=None,
            reason="",
            compensate_from=None,
            cancel_reason=None,
            card_json=codec.card_json(card),
            started_at_us=now_us,
            updated_at_us=now_us,
            owner=lease.owner,
            lease_expires_us=lease.expiry(now_us),
            version=0,
        )
    )


async def lock_saga(session: AsyncSession, order_id: str) -> Any | None:
    """The saga row, locked for the rest of the transaction (serializes the saga's end with
    cancellations; SQLite's writer lock already does)."""
    result = await session.execute(
        select(sagas).where(sagas.c.order_id == order_id).with_for_update()
    )
    return result.first()


async def request_cancel(session: AsyncSession, order_id: str, reason: str, now_us: int) -> None:
    """Asks a running saga to stop at its next step and compensate."""
    await session.execute(
        update(sagas)
        .where(sagas.c.order_id == order_id)
        .values(cancel_reason=reason, updated_at_us=now_us)
    )


async def reopen_for_cancel(
    session: AsyncSession, order_id: str, reason: str, now_us: int, lease: Lease
) -> None:
    """Restarts an ended saga of a confirmed order to refund and restock it, held by
    ``lease.owner``."""
    await session.execute(
        update(sagas)
        .where(sagas.c.order_id == order_id)
        .values(
            step=Step.COMPENSATE.value,
            status=RUNNING,
            outcome=Outcome.CANCELLED.value,
            reason=reason,
            compensate_from=Step.COMPLETE.value,
            cancel_reason=reason,
            attempts=0,
            retry_deadline_us=None,
            authorized=True,
            captured=True,
            started_at_us=now_us,
            updated_at_us=now_us,
            owner=lease.owner,
            lease_expires_us=lease.expiry(now_us),
            version=sagas.c.version + 1,
        )
    )


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
    """:class:`~services.order.saga.SagaStore` over the order service's database, for the
    sagas ``lease.owner`` holds."""

    def __init__(
        self,
        db: Database,
        now_us: Callable[[], int],
        lease: Lease,
        on_commit: OnCommit | None = None,
    ) -> None:
        self._db = db
        self._now_us = now_us
        self.lease = lease
        self._on_commit = on_commit

    def _held(self, order_id: str, version: int) -> ColumnElement[bool]:
        return and_(
            sagas.c.order_id == order_id,
            sagas.c.owner == self.lease.owner,
            sagas.c.version == version,
            sagas.c.status == RUNNING,
        )

    async def load(self, order_id: str) -> SagaState | None:
        """The saga if it is running and held here."""
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(sagas).where(
                        sagas.c.order_id == order_id,
                        sagas.c.status == RUNNING,
                        sagas.c.owner == self.lease.owner,
                    )
                )
            ).first()
            if row is None:
                return None
            order = await OrderStore(session).load(order_id)
        return codec.saga_state(row, order)

    async def save(self, state: SagaState) -> SagaState:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(sagas)
                .where(self._held(state.order_id, state.version))
                .values(
                    step=state.step.value,
                    attempts=state.attempts,
                    retry_deadline_us=state.retry_deadline_us,
                    payment_id=state.payment_id,
                    authorized=state.authorized,
                    captured=state.captured,
                    outcome=None if state.outcome is None else state.outcome.value,
                    reason=state.reason,
                    compensate_from=None
                    if state.compensate_from is None
                    else state.compensate_from.value,
                    updated_at_us=self._now_us(),
                    version=state.version + 1,
                )
                .returning(sagas.c.cancel_reason)
            )
            saved = result.first()
        if saved is None:
            raise LeaseLost(state.order_id)
        return replace(state, cancel_reason=saved[0], version=state.version + 1)

    async def finish(self, state: SagaState) -> None:
        assert state.outcome is not None
        for _ in range(_MAX_CONFLICTS):
            try:
                async with self._db.transaction() as session:
                    await self._finish(session, state)
                return
            except Conflict:
                continue
        raise Conflict(f"order {state.order_id} kept changing concurrently")

    async def running(self) -> tuple[int, int | None]:
        """How many sagas run, and when the oldest of them started (µs, or ``None``)."""
        async with self._db.transaction() as session:
            result = await session.execute(
                select(func.count(), func.min(sagas.c.started_at_us)).where(
                    sagas.c.status == RUNNING
                )
            )
            count, oldest_us = result.one()
            return int(count), None if oldest_us is None else int(oldest_us)

    async def _finish(self, session: AsyncSession, state: SagaState) -> None:
        assert state.outcome is not None
        row = await lock_saga(session, state.order_id)
        if row is None or (row.owner, row.version, row.status) != (
            self.lease.owner,
            state.version,
            RUNNING,
        ):
            raise LeaseLost(state.order_id)
        cancel_reason = row._mapping["cancel_reason"]
        if state.outcome is Outcome.CONFIRMED and cancel_reason is not None:
            raise CancelRequested(cancel_reason)
        store = OrderStore(session, self._on_commit)
        order = await store.load(state.order_id)
        now = self._now_us()
        event = _ending(order, state, now)
        if event is None:
            log.warning(
                "saga ended an order that had ended already",
                extra={"order_id": state.order_id, "status": str(order.status)},
            )
        else:
            await store.append(order, event)
        await session.execute(
            update(sagas)
            .where(self._held(state.order_id, state.version))
            .values(
                step=Step.DONE.value,
                status=ENDED,
                outcome=state.outcome.value,
                reason=state.reason,
                payment_id=state.payment_id,
                authorized=state.authorized,
                captured=state.captured,
                card_json=None,  # the card is needed no more: wipe it
                retry_deadline_us=None,
                updated_at_us=now,
                owner=None,
                lease_expires_us=None,
                version=state.version + 1,
            )
        )

    async def renew(self, order_ids: Collection[str]) -> set[str]:
        """Extends the leases of ``order_ids`` held here, in one statement; returns those
        still held (the others were adopted elsewhere or have ended)."""
        if not order_ids:
            return set()
        async with self._db.transaction() as session:
            result = await session.execute(
                update(sagas)
                .where(
                    sagas.c.order_id.in_(list(order_ids)),
                    sagas.c.owner == self.lease.owner,
                    sagas.c.status == RUNNING,
                )
                .values(lease_expires_us=self.lease.expiry(self._now_us()))
                .returning(sagas.c.order_id)
            )
            return set(result.scalars())

    async def adopt(self, limit: int) -> list[str]:
        """Claims up to ``limit`` running sagas that nobody holds (released, or their lease
        expired), oldest first; returns their ids. Each claim bumps the version, so the
        previous holder's writes fail from then on. On PostgreSQL rows being claimed or
        cancelled elsewhere are skipped (``FOR UPDATE SKIP LOCKED``); on SQLite the
        transaction holds the one writer lock, which serializes adopters."""
        if limit <= 0:
            return []
        now = self._now_us()
        free = and_(
            sagas.c.status == RUNNING,
            or_(sagas.c.owner.is_(None), sagas.c.lease_expires_us < now),
        )
        async with self._db.transaction() as session:
            candidates = await session.execute(
                select(sagas.c.order_id)
                .where(free)
                .order_by(sagas.c.started_at_us)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            order_ids = list(candidates.scalars())
            if not order_ids:
                return []
            claimed = await session.execute(
                update(sagas)
                .where(sagas.c.order_id.in_(order_ids), free)
                .values(
                    owner=self.lease.owner,
                    lease_expires_us=self.lease.expiry(now),
                    version=sagas.c.version + 1,
                )
                .returning(sagas.c.order_id)
            )
            adopted = set(claimed.scalars())
        return [order_id for order_id in order_ids if order_id in adopted]

    async def release(self, order_ids: Collection[str]) -> None:
        """Gives up the leases of ``order_ids`` (a drain): any instance may adopt them now."""
        if not order_ids:
            return
        async with self._db.transaction() as session:
            await session.execute(
                update(sagas)
                .where(
                    sagas.c.order_id.in_(list(order_ids)),
                    sagas.c.owner == self.lease.owner,
                    sagas.c.status == RUNNING,
                )
                .values(owner=None, lease_expires_us=None, version=sagas.c.version + 1)
            )
