"""Payment's tables (the migrations create them; a test checks that both agree).

Only the last four digits of a card are stored; the number and CVC never reach a table.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

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
    Column("payment_id", String(36), ForeignKey("payments.payment_id"), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("requested_minor", BigInteger, nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    UniqueConstraint("payment_id", "idempotency_key", name="uq_refunds_payment_key"),
)
