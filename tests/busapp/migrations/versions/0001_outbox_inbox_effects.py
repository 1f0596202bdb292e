"""Outbox, inbox and an effects table: the schema the bus tests run against."""

import sqlalchemy as sa
from alembic import op

from services.platform.outbox import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox_table(op)
    create_inbox_table(op)
    # No uniqueness on event_id: an effect applied twice shows up as two rows.
    op.create_table(
        "effects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effects")
    op.drop_table("inbox")
    op.drop_table("outbox")
