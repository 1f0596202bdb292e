"""Catalog's tables (the migrations create them; a test checks that both agree)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, String, Table, Text

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category_id", String(64), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("image_url", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Index("ix_products_active_category", "active", "category_id", "product_id"),
)
