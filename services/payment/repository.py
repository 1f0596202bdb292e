"""Payment's tables and repository (SQLAlchemy Core over the service's own database).

Only the last four digits of a card are stored; the number and CVC never reach a table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment.domain import DeclineReason, Money, Payment, PaymentStatus, Refund

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("idempotency_key", String(128), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_reason", String(32), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("captured_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
    Index("ix_payments_order_id", "order_id"),
    Index("ix_payments_status_expires_at_us", "status", "expires_at_us"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("requested_minor", BigInteger, nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    UniqueConstraint("payment_id", "idempotency_key", name="uq_refunds_payment_key"),
)


def _payment(row: Any) -> Payment:
    m = row._mapping
    return Payment(
        payment_id=m["payment_id"],
        idempotency_key=m["idempotency_key"],
        order_id=m["order_id"],
        amount=Money(m["amount_minor"], m["currency"]),
        status=PaymentStatus(m["status"]),
        decline_reason=DeclineReason(m["decline_reason"]),
        card_last4=m["card_last4"],
        captured_minor=m["captured_minor"],
        refunded_minor=m["refunded_minor"],
        created_at_us=m["created_at_us"],
        updated_at_us=m["updated_at_us"],
        expires_at_us=m["expires_at_us"],
    )


def _refund(row: Any) -> Refund:
    m = row._mapping
    requested = m["requested_minor"]
    return Refund(
        refund_id=m["refund_id"],
        payment_id=m["payment_id"],
        idempotency_key=m["idempotency_key"],
        requested=None if requested is None else Money(requested, m["currency"]),
        amount=Money(m["amount_minor"], m["currency"]),
        reason=m["reason"],
        created_at_us=m["created_at_us"],
    )


def _state(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status.value,
        "decline_reason": payment.decline_reason.value,
        "captured_minor": payment.captured_minor,
        "refunded_minor": payment.refunded_minor,
        "updated_at_us": payment.updated_at_us,
    }


class PaymentRepository:
    """Payments and refunds, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        query = select(payments).where(payments.c.payment_id == payment_id)
        if for_update:  # PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serializes
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return None if row is None else _payment(row)

    async def by_idempotency_key(self, key: str) -> Payment | None:
        query = select(payments).where(payments.c.idempotency_key == key)
        row = (await self._session.execute(query)).first()
        return None if row is None else _payment(row)

    async def add(self, payment: Payment) -> bool:
        """Inserts ``payment``; ``False`` when its idempotency key is taken (a concurrent twin)."""
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(payments).values(
                        payment_id=payment.payment_id,
                        idempotency_key=payment.idempotency_key,
                        order_id=payment.order_id,
                        amount_minor=payment.amount.amount_minor,
                        currency=payment.amount.currency,
                        card_last4=payment.card_last4,
                        created_at_us=payment.created_at_us,
                        expires_at_us=payment.expires_at_us,
                        **_state(payment),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def expired_authorizations(self, now_us: int, limit: int) -> list[Payment]:
        """Up to ``limit`` authorizations whose hold ended, locked for this transaction.

        PostgreSQL skips rows another transaction holds (a capture deciding right now);
        SQLite's writer transaction already excludes everyone else.
        """
        query = (
            select(payments)
            .where(
                (payments.c.status == PaymentStatus.AUTHORIZED.value)
                & (payments.c.expires_at_us <= now_us)
            )
            .order_by(payments.c.expires_at_us)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_payment(row) for row in await self._session.execute(query)]

    async def save(self, payment: Payment) -> None:
        await self._session.execute(
            update(payments)
            .where(payments.c.payment_id == payment.payment_id)
            .values(**_state(payment))
        )

    async def refund_by_key(self, payment_id: str, key: str) -> Refund | None:
        query = select(refunds).where(
            (refunds.c.payment_id == payment_id) & (refunds.c.idempotency_key == key)
        )
        row = (await self._session.execute(query)).first()
        return None if row is None else _refund(row)

    async def add_refund(self, refund: Refund) -> None:
        await self._session.execute(
            insert(refunds).values(
                refund_id=refund.refund_id,
                payment_id=refund.payment_id,
                idempotency_key=refund.idempotency_key,
                requested_minor=None if refund.requested is None else refund.requested.amount_minor,
                amount_minor=refund.amount.amount_minor,
                currency=refund.amount.currency,
                reason=refund.reason,
                created_at_us=refund.created_at_us,
            )
        )
