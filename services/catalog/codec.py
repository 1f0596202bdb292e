"""Catalog's conversions: domain ↔ protobuf (API resources, events) and table rows."""

from __future__ import annotations

from typing import Any

from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import events_pb2
from emporium.common.v1 import money_pb2

from services.catalog.domain import Price, Product, search_text
from services.platform.clock import timestamp
from services.platform.codec import fields_of, from_row
from services.platform.db import Row

#: The product's fields that the API message and the table row hold as they are.
_SHARED = ("product_id", "sku", "name", "description", "category_id", "image_url", "active")


def money(price: Price) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=price.amount_minor, currency_code=price.currency_code)


def price_from(message: money_pb2.Money) -> Price:
    return Price(message.amount_minor, message.currency_code)


def product_proto(product: Product) -> pb.Product:
    return pb.Product(
        **fields_of(product, *_SHARED),
        price=money(product.price),
        create_time=timestamp(product.created_at_us),
        update_time=timestamp(product.updated_at_us),
    )


class ProductMessages:
    """Each product's API message, made once per version of the product and reused: reads
    are answered from memory (``cache.py``), and building the message is most of what
    such a read costs. A product is immutable, so a new version is a new object and gets
    a new message; a message handed out is only ever copied into a response."""

    __slots__ = ("_made",)

    def __init__(self) -> None:
        self._made: dict[str, tuple[Product, pb.Product]] = {}

    def of(self, product: Product) -> pb.Product:
        made = self._made.get(product.product_id)
        if made is None or made[0] is not product:
            made = self._made[product.product_id] = (product, product_proto(product))
        return made[1]


# -- events ------------------------------------------------------------------------------


def _event(product: Product, at_us: int) -> dict[str, Any]:
    """What every catalog event says: the product (its id and SKU) and when."""
    return {**fields_of(product, "product_id", "sku"), "occur_time": timestamp(at_us)}


def product_created(product: Product) -> events_pb2.ProductCreated:
    return events_pb2.ProductCreated(
        **_event(product, product.created_at_us),
        **fields_of(product, "name", "category_id"),
        price=money(product.price),
    )


def product_updated(product: Product) -> events_pb2.ProductUpdated:
    return events_pb2.ProductUpdated(**_event(product, product.updated_at_us))


def price_changed(before: Product, after: Product) -> events_pb2.PriceChanged:
    return events_pb2.PriceChanged(
        **_event(after, after.updated_at_us),
        old_price=money(before.price),
        new_price=money(after.price),
    )


# -- rows --------------------------------------------------------------------------------


def product_row(product: Product) -> dict[str, Any]:
    return {
        **fields_of(product, *_SHARED, "created_at_us", "updated_at_us"),
        "price_minor": product.price.amount_minor,
        "currency_code": product.price.currency_code,
        "search_text": search_text(product.name, product.description),
    }


def product_from_row(row: Row) -> Product:
    return from_row(
        Product,
        row,
        price=Price(row["price_minor"], row["currency_code"]),
        active=bool(row["active"]),
    )
