"""Catalog's conversions: domain ↔ protobuf (API resources, events) and table rows."""

from __future__ import annotations

from typing import Any

from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import events_pb2
from emporium.common.v1 import money_pb2

from services.catalog.domain import Price, Product, search_text
from services.platform.clock import timestamp
from services.platform.db import Row


def money(price: Price) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=price.amount_minor, currency_code=price.currency_code)


def price_from(message: money_pb2.Money) -> Price:
    return Price(message.amount_minor, message.currency_code)


def product_proto(product: Product) -> pb.Product:
    return pb.Product(
        product_id=product.product_id,
        sku=product.sku,
        name=product.name,
        description=product.description,
        category_id=product.category_id,
        price=money(product.price),
        image_url=product.image_url,
        active=product.active,
        create_time=timestamp(product.created_at_us),
        update_time=timestamp(product.updated_at_us),
    )


# -- events ------------------------------------------------------------------------------


def product_created(product: Product) -> events_pb2.ProductCreated:
    return events_pb2.ProductCreated(
        product_id=product.product_id,
        sku=product.sku,
        name=product.name,
        category_id=product.category_id,
        price=money(product.price),
        occur_time=timestamp(product.created_at_us),
    )


def product_updated(product: Product) -> events_pb2.ProductUpdated:
    return events_pb2.ProductUpdated(
        product_id=product.product_id,
        sku=product.sku,
        occur_time=timestamp(product.updated_at_us),
    )


def price_changed(before: Product, after: Product) -> events_pb2.PriceChanged:
    return events_pb2.PriceChanged(
        product_id=after.product_id,
        sku=after.sku,
        old_price=money(before.price),
        new_price=money(after.price),
        occur_time=timestamp(after.updated_at_us),
    )


# -- rows --------------------------------------------------------------------------------


def product_row(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
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


def product_from_row(row: Row) -> Product:
    return Product(
        product_id=row["product_id"],
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        category_id=row["category_id"],
        price=Price(row["price_minor"], row["currency_code"]),
        image_url=row["image_url"],
        active=bool(row["active"]),
        created_at_us=row["created_at_us"],
        updated_at_us=row["updated_at_us"],
    )
