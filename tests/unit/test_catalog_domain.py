"""Catalog's domain rules, page tokens and demo data, without I/O."""

from __future__ import annotations

import uuid

import pytest

from services.catalog.codec import ProductMessages, product_proto
from services.catalog.demo import DEMO_PRODUCTS
from services.catalog.domain import (
    CreateProduct,
    Price,
    Product,
    UpdateProduct,
    category_name,
    search_text,
)
from services.platform.errors import InvalidArgument
from services.platform.ids import time_ordered_id


def _product() -> Product:
    return Product(
        product_id="p-1",
        sku="SKU-1",
        name="Kettle",
        description="Gooseneck",
        category_id="kitchen",
        price=Price(5990, "EUR"),
        image_url="",
        active=True,
        created_at_us=1,
        updated_at_us=1,
    )


def test_every_demo_product_is_a_valid_create_command() -> None:
    for demo in DEMO_PRODUCTS:
        CreateProduct(
            demo.sku,
            demo.name,
            demo.description,
            demo.category_id,
            Price(demo.price_minor, demo.currency),
        ).validate()


def test_the_demo_catalog_has_unique_skus_in_enough_categories_with_stock() -> None:
    skus = [p.sku for p in DEMO_PRODUCTS]
    assert len(skus) >= 24
    assert len(set(skus)) == len(skus)
    assert len({p.category_id for p in DEMO_PRODUCTS}) >= 5
    assert all(p.currency == "EUR" and p.stock > 0 for p in DEMO_PRODUCTS)


@pytest.mark.parametrize(
    ("slug", "name"),
    [("books", "Books"), ("coffee-and-tea", "Coffee and Tea"), ("and-more", "And More")],
)
def test_a_category_name_is_derived_from_its_slug(slug: str, name: str) -> None:
    assert category_name(slug) == name


def test_an_update_that_changes_nothing_returns_the_same_product() -> None:
    product = _product()
    assert UpdateProduct("p-1", name="Kettle", active=True).apply(product, now_us=9) is product


def test_an_update_changes_only_the_given_fields_and_the_update_time() -> None:
    changed = UpdateProduct("p-1", price=Price(4990, "EUR"), description="").apply(_product(), 9)
    assert (changed.price, changed.description, changed.updated_at_us) == (
        Price(4990, "EUR"),
        "",
        9,
    )
    assert (changed.name, changed.created_at_us, changed.active) == ("Kettle", 1, True)


def test_an_update_validates_only_the_fields_it_sets() -> None:
    UpdateProduct("p-1", active=False).validate()
    with pytest.raises(InvalidArgument) as caught:
        UpdateProduct("p-1", name="", price=Price(0, "eur")).validate()
    fields = {v.field for v in caught.value.violations}
    assert fields == {"name", "price.amount_minor", "price.currency_code"}


def test_search_text_folds_case_beyond_ascii() -> None:
    assert "strasse" in search_text("STRASSE", "")
    assert "straße".casefold() in search_text("Straße", "")


def test_product_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [time_ordered_id() for _ in range(3)]
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the millisecond prefix


def test_a_product_s_message_is_made_once_per_version_of_the_product() -> None:
    messages = ProductMessages()
    product = _product()
    first = messages.of(product)
    assert messages.of(product) is first
    assert first == product_proto(product)
    renamed = UpdateProduct("p-1", name="Teapot").apply(product, now_us=9)
    assert messages.of(renamed).name == "Teapot"
    assert messages.of(renamed) is not first
