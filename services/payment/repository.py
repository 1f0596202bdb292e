"""Payment's repositories on a database transaction (SQLAlchemy Core, built once)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from services.payment.codec import (
    payment_from_row,
    payment_row,
    payment_state,
    refund_from_row,
    refund_row,
)
from services.payment.domain import Payment, PaymentStatus, Refund
from services.payment.tables import payments, refunds
from services.platform.db import insert_new
from services.platform.uow import SqlRepository, SqlTx

STREAM = "payment"

_GET = select(payments).where(payments.c.payment_id == bindparam("payment_id"))
# PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serializes writers.
_GET_FOR_UPDATE = _GET.with_for_update()
_BY_KEY = select(payments).where(payments.c.idempotency_key == bindparam("key"))
_ADD = insert_new(payments)
# PostgreSQL skips rows another transaction holds (a capture deciding right now); SQLite's
# writer transaction already excludes everyone else.
_EXPIRED = (
    select(payments)
    .where(
        payments.c.status == PaymentStatus.AUTHORIZED.value,
        payments.c.expires_at_us <= bindparam("now"),
    )
    .order_by(payments.c.expires_at_us)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_SAVE = update(payments).where(payments.c.payment_id == bindparam("b_payment_id"))
_REFUND_BY_KEY = select(refunds).where(
    refunds.c.payment_id == bindparam("payment_id"), refunds.c.idempotency_key == bindparam("key")
)
_ADD_REFUND = insert(refunds)


class SqlPayments(SqlRepository):
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        statement = _GET_FOR_UPDATE if for_update else _GET
        row = await self._tx.fetch_one(statement, {"payment_id": payment_id})
        return None if row is None else payment_from_row(row)

    async def by_idempotency_key(self, key: str) -> Payment | None:
        row = await self._tx.fetch_one(_BY_KEY, {"key": key})
        return None if row is None else payment_from_row(row)

    async def add(self, payment: Payment) -> bool:
        return await self._insert_new(_ADD, payment_row(payment))

    async def save(self, payment: Payment) -> None:
        await self._tx.execute(
            _SAVE, {**payment_state(payment), "b_payment_id": payment.payment_id}
        )

    async def expired_authorizations(self, now_us: int, limit: int) -> list[Payment]:
        rows = await self._tx.fetch_all(_EXPIRED, {"now": now_us, "limit": limit})
        return [payment_from_row(row) for row in rows]

    async def refund_by_key(self, payment_id: str, key: str) -> Refund | None:
        row = await self._tx.fetch_one(_REFUND_BY_KEY, {"payment_id": payment_id, "key": key})
        return None if row is None else refund_from_row(row)

    async def add_refund(self, refund: Refund) -> None:
        await self._tx.execute(_ADD_REFUND, refund_row(refund))


class SqlPaymentTx(SqlTx):
    """Payment's repositories in one transaction."""

    stream = STREAM
    payments: SqlPayments
