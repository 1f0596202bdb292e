"""Products and the outbox."""

import sqlalchemy as sa
from alembic import op

from services.platform.outbox import create_outbox_table

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("product_id", sa.String(64), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category_id", sa.String(64), nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency_code", sa.String(3), nullable=False),
        sa.Column("image_url", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        # name and description case-folded, for the case-insensitive `query` filter
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_products_active_category", "products", ["active", "category_id", "product_id"]
    )
    create_outbox_table(op)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index("ix_products_active_category", "products")
    op.drop_table("products")
