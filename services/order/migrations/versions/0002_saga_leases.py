"""Saga ownership: the owning instance, its lease and a version for compare-and-set."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("sagas", sa.Column("owner", sa.String(64), nullable=True))
    op.add_column("sagas", sa.Column("lease_expires_us", sa.BigInteger, nullable=True))
    op.add_column(
        "sagas", sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    op.create_index("ix_sagas_status_lease", "sagas", ["status", "lease_expires_us"])


def downgrade() -> None:
    op.drop_index("ix_sagas_status_lease", table_name="sagas")
    op.drop_column("sagas", "version")
    op.drop_column("sagas", "lease_expires_us")
    op.drop_column("sagas", "owner")
