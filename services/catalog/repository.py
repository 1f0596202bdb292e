"""Catalog's repositories on a database transaction (SQLAlchemy Core, built once)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from services.catalog.codec import product_from_row, product_row
from services.catalog.domain import Product
from services.catalog.tables import products
from services.platform.db import IntegrityViolation
from services.platform.errors import AlreadyExists
from services.platform.uow import SqlRepository, SqlTx

STREAM = "catalog"

_SKU_TAKEN = select(products.c.product_id).where(products.c.sku == bindparam("sku"))
_INSERT = insert(products)
_GET = select(products).where(products.c.product_id == bindparam("product_id"))
# PostgreSQL row lock; SQLite already holds the write lock (BEGIN IMMEDIATE).
_GET_FOR_UPDATE = _GET.with_for_update()
_SAVE = update(products).where(products.c.product_id == bindparam("b_product_id"))
_ALL = select(products).order_by(products.c.product_id)


class SqlProducts(SqlRepository):
    async def add(self, product: Product) -> None:
        if await self._tx.fetch_one(_SKU_TAKEN, {"sku": product.sku}) is not None:
            raise AlreadyExists(f"a product with sku {product.sku} exists")
        try:
            await self._tx.execute(_INSERT, product_row(product))
        except IntegrityViolation as exc:  # a concurrent create of the same sku won the race
            raise AlreadyExists(f"a product with sku {product.sku} exists") from exc

    async def get(self, product_id: str, *, for_update: bool = False) -> Product | None:
        statement = _GET_FOR_UPDATE if for_update else _GET
        row = await self._tx.fetch_one(statement, {"product_id": product_id})
        return None if row is None else product_from_row(row)

    async def save(self, product: Product) -> None:
        values = product_row(product)
        del values["product_id"]
        await self._tx.execute(_SAVE, {**values, "b_product_id": product.product_id})

    async def all(self) -> list[Product]:
        return [product_from_row(row) for row in await self._tx.fetch_all(_ALL)]


class SqlCatalogTx(SqlTx):
    """Catalog's repositories in one transaction."""

    stream = STREAM
    products: SqlProducts
