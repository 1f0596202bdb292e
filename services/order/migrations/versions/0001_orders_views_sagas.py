"""Order events, order views, idempotency keys, sagas, outbox and inbox."""

import sqlalchemy as sa
from alembic import op

from services.platform.db import SERIAL_ID
from services.platform.outbox import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("order_id", "version", name="uq_order_events_order_version"),
    )
    op.create_table(
        "order_views",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("lines_json", sa.Text, nullable=False),
        sa.Column("shipping_json", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("shipment_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_order_views_user_created", "order_views", ["user_id", "created_at_us", "order_id"]
    )
    op.create_table(
        "order_requests",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sagas",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_deadline_us", sa.BigInteger, nullable=True),
        sa.Column("payment_id", sa.String(64), nullable=False),
        sa.Column("authorized", sa.Boolean, nullable=False),
        sa.Column("captured", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("compensate_from", sa.String(16), nullable=True),
        sa.Column("cancel_reason", sa.Text, nullable=True),
        sa.Column("card_json", sa.Text, nullable=True),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sagas_status", "sagas", ["status"])
    create_outbox_table(op)
    create_inbox_table(op)


def downgrade() -> None:
    for table in ("inbox", "outbox", "sagas", "order_requests", "order_views", "order_events"):
        op.drop_table(table)
