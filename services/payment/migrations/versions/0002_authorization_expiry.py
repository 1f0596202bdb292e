"""Authorizations expire: each payment records when its hold ends."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

#: The hold given to authorizations made before holds existed (the service's default).
DEFAULT_HOLD_US = 7 * 24 * 3600 * 1_000_000


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("expires_at_us", sa.BigInteger, nullable=True))
    op.execute(f"UPDATE payments SET expires_at_us = created_at_us + {DEFAULT_HOLD_US}")
    with op.batch_alter_table("payments") as batch:
        batch.alter_column("expires_at_us", existing_type=sa.BigInteger, nullable=False)
    op.create_index("ix_payments_status_expires_at_us", "payments", ["status", "expires_at_us"])


def downgrade() -> None:
    op.drop_index("ix_payments_status_expires_at_us", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("expires_at_us")
