"""Fulfillment's table (SQLAlchemy Core; migrations/ creates it, a test compares the two)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", String(36), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("shipping_address", Text, nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("dispatched_at_us", BigInteger, nullable=True),
    UniqueConstraint("order_id", name="uq_shipments_order_id"),
)
