"""The outbox for UserRegistered events.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from services.platform.outbox import create_outbox_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_table(op)


def downgrade() -> None:
    op.drop_table("outbox")
