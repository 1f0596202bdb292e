"""Shipments, the outbox and the inbox."""

import sqlalchemy as sa
from alembic import op

from services.platform.outbox import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shipping_address", sa.Text, nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("dispatched_at_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("order_id", name="uq_shipments_order_id"),
    )
    create_outbox_table(op)
    create_inbox_table(op)


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")
    op.drop_table("shipments")
