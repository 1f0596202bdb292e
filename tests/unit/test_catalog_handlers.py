"""Catalog's handlers on a fake unit of work: reads from memory, writes through the port."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from services.catalog.domain import CreateProduct, ListProducts, Price, UpdateProduct
from services.catalog.handlers import Catalog
from services.platform import auth
from services.platform.errors import AlreadyExists, NotFound, PermissionDenied
from tests.support.fakes import FakeUnitOfWork
from tests.support.fakes.catalog import CatalogState, FakeCatalogTx, fake_catalog_uow

ADMIN = auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE}))
Uow = FakeUnitOfWork[CatalogState, FakeCatalogTx]


@pytest.fixture
def uow() -> Uow:
    return fake_catalog_uow()


@pytest.fixture
def catalog(uow: Uow) -> Iterator[Catalog]:
    ids = iter(f"p{n:03d}" for n in range(1000))
    clock = iter(range(1_000, 10**9, 10))
    auth.set_caller(ADMIN)
    yield Catalog(uow, new_id=lambda: next(ids), clock=lambda: next(clock))
    auth.set_caller(None)


def _create(sku: str, category: str = "tea", name: str = "Green tea") -> CreateProduct:
    return CreateProduct(sku, name, "A fine leaf", category, Price(450, "EUR"), "")


async def test_created_products_are_read_from_memory_without_the_database(
    catalog: Catalog, uow: Uow
) -> None:
    product = await catalog.create_product(_create("T-1"))
    reads = uow.reads
    assert await catalog.get_product(product.product_id) == product
    assert await catalog.batch_get_products([product.product_id] * 2) == [product, product]
    assert uow.reads == reads
    assert uow.outbox.event_types() == ["ProductCreated"]


async def test_a_failed_create_leaves_memory_and_outbox_unchanged(
    catalog: Catalog, uow: Uow
) -> None:
    await catalog.create_product(_create("T-1"))
    with pytest.raises(AlreadyExists):
        await catalog.create_product(_create("T-1"))
    assert len(catalog.cache) == 1
    assert uow.outbox.event_types() == ["ProductCreated"]


async def test_an_update_reaches_memory_and_records_its_events(catalog: Catalog, uow: Uow) -> None:
    product = await catalog.create_product(_create("T-1"))
    renamed = await catalog.update_product(UpdateProduct(product.product_id, name="Sencha"))
    repriced = await catalog.update_product(
        UpdateProduct(product.product_id, price=Price(500, "EUR"))
    )
    assert (await catalog.get_product(product.product_id)) == repriced
    assert repriced.name == renamed.name == "Sencha"
    assert uow.outbox.event_types() == [
        "ProductCreated",
        "ProductUpdated",
        "PriceChanged",
        "ProductUpdated",
    ]


async def test_listing_pages_filters_and_hides_inactive_products(catalog: Catalog) -> None:
    made = [await catalog.create_product(_create(f"T-{n}")) for n in range(5)]
    await catalog.create_product(_create("M-1", category="mugs", name="Mug"))
    await catalog.update_product(UpdateProduct(made[0].product_id, active=False))
    first = await catalog.list_products(ListProducts(2, "", "tea", ""))
    assert [p.sku for p in first.products] == ["T-1", "T-2"]
    assert first.total_size == 4
    rest = await catalog.list_products(ListProducts(10, first.next_page_token, "tea", ""))
    assert [p.sku for p in rest.products] == ["T-3", "T-4"]
    assert rest.next_page_token == ""
    mugs = await catalog.list_products(ListProducts(10, "", "", "MUG"))
    assert [p.sku for p in mugs.products] == ["M-1"]
    assert [c.category_id for c in await catalog.list_categories()] == ["mugs", "tea"]


async def test_refresh_replaces_only_with_newer_versions(catalog: Catalog, uow: Uow) -> None:
    product = await catalog.create_product(_create("T-1"))
    newer = dataclasses.replace(product, name="Changed elsewhere", updated_at_us=10**10)
    uow.state.products[product.product_id] = newer  # another replica wrote it
    await catalog.refresh(product.product_id)
    assert (await catalog.get_product(product.product_id)).name == "Changed elsewhere"
    catalog.cache.put(product)  # a late, older notification
    assert (await catalog.get_product(product.product_id)).name == "Changed elsewhere"


async def test_load_fills_memory_from_the_database(uow: Uow) -> None:
    writer, reader = Catalog(uow, new_id=lambda: "p1"), Catalog(uow)
    auth.set_caller(ADMIN)
    try:
        await writer.create_product(_create("T-1"))
    finally:
        auth.set_caller(None)
    with pytest.raises(NotFound):
        await reader.get_product("p1")
    await reader.load()
    assert (await reader.get_product("p1")).sku == "T-1"


async def test_only_admins_change_the_catalog(catalog: Catalog) -> None:
    auth.set_caller(auth.Caller("user-1", "ada", frozenset({"customer"})))
    with pytest.raises(PermissionDenied):
        await catalog.create_product(_create("T-1"))
