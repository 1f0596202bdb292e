"""Inventory's tables (the migrations create them; a test checks that both agree)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

stock = Table(
    "stock",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("available", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("sold", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    CheckConstraint("available >= 0", name="ck_stock_available"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved"),
    CheckConstraint("sold >= 0", name="ck_stock_sold"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("reservation_id", String(36), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at_us", BigInteger, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    # One reservation per order: concurrent replays of ReserveStock cannot both hold stock.
    UniqueConstraint("order_id", name="uq_reservations_order_id"),
    Index("ix_reservations_due", "status", "expires_at_us"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column(
        "reservation_id",
        String(36),
        ForeignKey("reservations.reservation_id"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unavailable", Boolean, nullable=False),
)
