"""Catalog's tables and repository (SQLAlchemy Core over the service's own database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Index,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.domain import Price, Product, search_text
from services.platform.errors import AlreadyExists

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


def _product(row: Any) -> Product:
    m = row._mapping
    return Product(
        product_id=m["product_id"],
        sku=m["sku"],
        name=m["name"],
        description=m["description"],
        category_id=m["category_id"],
        price=Price(m["price_minor"], m["currency_code"]),
        image_url=m["image_url"],
        active=bool(m["active"]),
        created_at_us=m["created_at_us"],
        updated_at_us=m["updated_at_us"],
    )


def _values(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "category_id": product.category_id,
        "price_minor": product.price.amount_minor,
        "currency_code": product.price.currency_code,
        "image_url": product.image_url,
        "active": product.active,
        "search_text": search_text(product.name, product.description),
        "created_at_us": product.created_at_us,
        "updated_at_us": product.updated_at_us,
    }


class ProductRepository:
    """Products, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, product: Product) -> None:
        taken = await self._session.execute(
            select(products.c.product_id).where(products.c.sku == product.sku)
        )
        if taken.first() is not None:
            raise AlreadyExists(f"a product with sku {product.sku} exists")
        try:
            async with self._session.begin_nested():
                await self._session.execute(
                    insert(products).values(product_id=product.product_id, **_values(product))
                )
        except IntegrityError as exc:  # a concurrent create of the same sku won the race
            raise AlreadyExists(f"a product with sku {product.sku} exists") from exc

    async def get(self, product_id: str, *, for_update: bool = False) -> Product | None:
        query = select(products).where(products.c.product_id == product_id)
        if for_update:  # PostgreSQL row lock; SQLite already holds the write lock (IMMEDIATE)
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return None if row is None else _product(row)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        if not product_ids:
            return {}
        result = await self._session.execute(
            select(products).where(products.c.product_id.in_(set(product_ids)))
        )
        return {p.product_id: p for p in map(_product, result)}

    async def save(self, product: Product) -> None:
        await self._session.execute(
            update(products)
            .where(products.c.product_id == product.product_id)
            .values(**_values(product))
        )

    async def page(
        self, *, category_id: str, query: str, after: str, limit: int
    ) -> tuple[list[Product], int]:
        """Up to ``limit`` active products after ``after`` in product id order, and how many
        active products match the filter in all."""
        conditions: list[ColumnElement[bool]] = [products.c.active == true()]
        if category_id:
            conditions.append(products.c.category_id == category_id)
        if query:
            conditions.append(products.c.search_text.contains(query.casefold(), autoescape=True))
        total = await self._session.scalar(select(func.count()).where(*conditions))
        keyset = [*conditions, products.c.product_id > after] if after else conditions
        result = await self._session.execute(
            select(products).where(*keyset).order_by(products.c.product_id).limit(limit)
        )
        return [_product(row) for row in result], int(total or 0)

    async def active_category_ids(self) -> list[str]:
        result = await self._session.execute(
            select(products.c.category_id).where(products.c.active == true()).distinct()
        )
        return [category_id for (category_id,) in result]
