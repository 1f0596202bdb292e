"""The bus benchmark's schema: the platform's outbox and inbox plus a one-column effect.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from services.platform.outbox import create_inbox_table, create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table(op)
    create_inbox_table(op)
    op.create_table(
        "effects",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("value", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effects")
    op.drop_table("inbox")
    op.drop_table("outbox")
