"""Stock levels, reservations with their lines, and the outbox."""

import sqlalchemy as sa
from alembic import op

from services.platform.outbox import create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("available", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("sold", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("available >= 0", name="ck_stock_available"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved"),
        sa.CheckConstraint("sold >= 0", name="ck_stock_sold"),
    )
    op.create_table(
        "reservations",
        sa.Column("reservation_id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("order_id", name="uq_reservations_order_id"),
    )
    op.create_index("ix_reservations_due", "reservations", ["status", "expires_at_us"])
    op.create_table(
        "reservation_lines",
        sa.Column(
            "reservation_id",
            sa.String(36),
            sa.ForeignKey("reservations.reservation_id"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unavailable", sa.Boolean, nullable=False),
    )
    create_outbox_table(op)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("reservation_lines")
    op.drop_index("ix_reservations_due", table_name="reservations")
    op.drop_table("reservations")
    op.drop_table("stock")
