"""A fake unit of work for catalog's handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.catalog.domain import Product
from services.platform.errors import AlreadyExists
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork


@dataclass
class CatalogState:
    products: dict[str, Product] = field(default_factory=dict)


class FakeProducts(FakeRepository[CatalogState]):
    async def add(self, product: Product) -> None:
        if any(p.sku == product.sku for p in self._state.products.values()):
            raise AlreadyExists(f"a product with sku {product.sku} exists")
        self._state.products[product.product_id] = product

    async def get(self, product_id: str, *, for_update: bool = False) -> Product | None:
        return self._state.products.get(product_id)

    async def save(self, product: Product) -> None:
        self._state.products[product.product_id] = product

    async def all(self) -> list[Product]:
        return sorted(self._state.products.values(), key=lambda p: p.product_id)


class FakeCatalogTx(FakeTx):
    def __init__(self, state: CatalogState, outbox: FakeOutbox) -> None:
        super().__init__(outbox)
        self.products = FakeProducts(state)


def fake_catalog_uow() -> FakeUnitOfWork[CatalogState, FakeCatalogTx]:
    return FakeUnitOfWork(CatalogState(), FakeCatalogTx)
