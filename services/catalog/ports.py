"""What catalog's handlers need from storage (fakes in tests/support/fakes/catalog.py)."""

from __future__ import annotations

from typing import Protocol

from services.catalog.domain import Product
from services.platform.uow import Tx, UnitOfWork


class Products(Protocol):
    async def add(self, product: Product) -> None:
        """Adds ``product``; raises ``AlreadyExists`` when its SKU is taken."""

    async def get(self, product_id: str, *, for_update: bool = False) -> Product | None:
        """One product; ``for_update`` locks its row until the transaction ends."""

    async def save(self, product: Product) -> None: ...

    async def all(self) -> list[Product]:
        """Every product (what the in-memory cache starts from)."""


class CatalogTx(Tx, Protocol):
    @property
    def products(self) -> Products: ...


CatalogUnitOfWork = UnitOfWork[CatalogTx]
