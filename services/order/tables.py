"""The order service's tables (SQLAlchemy Core). The schema itself is made by migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from services.platform.db import SERIAL_ID

metadata = MetaData()

#: The event store: one append-only stream per order. The unique (order_id, version) is the
#: optimistic concurrency check: of two writers appending the same version, one fails.
order_events = Table(
    "order_events",
    metadata,
    Column("id", SERIAL_ID, primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("occurred_at_us", BigInteger, nullable=False),
    UniqueConstraint("order_id", "version", name="uq_order_events_order_version"),
)

#: The read model (CQRS): one row per order, kept by the projector in the append's
#: transaction and rebuildable from ``order_events``.
order_views = Table(
    "order_views",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("lines_json", Text, nullable=False),
    Column("shipping_json", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("shipment_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Index("ix_order_views_user_created", "user_id", "created_at_us", "order_id"),
)

#: Idempotency of PlaceOrder: a key is unique per user and remembers its request.
order_requests = Table(
    "order_requests",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("idempotency_key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

#: The persisted saga (process manager) of each order. ``card_json`` is kept only while the
#: saga runs (the simulated processor needs it to authorize) and wiped when it ends.
#: ``cancel_reason`` is written by CancelOrder only; the saga reads it at every checkpoint.
#: ``owner`` is the instance running the saga until ``lease_expires_us``; ``version`` grows
#: with every write of the saga and every change of owner (the fencing token, docs/saga.md).
sagas = Table(
    "sagas",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("step", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("retry_deadline_us", BigInteger, nullable=True),
    Column("payment_id", String(64), nullable=False),
    Column("authorized", Boolean, nullable=False),
    Column("captured", Boolean, nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("reason", Text, nullable=False),
    Column("compensate_from", String(16), nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("card_json", Text, nullable=True),
    Column("started_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("owner", String(64), nullable=True),
    Column("lease_expires_us", BigInteger, nullable=True),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Index("ix_sagas_status", "status"),
    Index("ix_sagas_status_lease", "status", "lease_expires_us"),
)
