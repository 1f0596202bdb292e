"""The outbox for UserRegistered events."""

from alembic import op

from services.platform.outbox import create_outbox_table

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_outbox_table(op)


def downgrade() -> None:
    op.drop_table("outbox")
