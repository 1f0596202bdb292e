"""Catalog's use cases."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emporium.catalog.v1 import events_pb2
from emporium.common.v1 import money_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.catalog.domain import (
    MAX_BATCH,
    Category,
    CreateProduct,
    ListProducts,
    Price,
    Product,
    UpdateProduct,
    category_name,
)
from services.catalog.repository import ProductRepository
from services.platform import auth, outbox
from services.platform.db import Database
from services.platform.errors import FieldViolation, InvalidArgument, NotFound
from services.platform.paging import PageTokens

STREAM = "catalog"
#: ListProducts pages: after the last product id, for one category and search text.
PRODUCT_PAGES = PageTokens("catalog.products.v1", (str,))


def _now_us() -> int:
    return time.time_ns() // 1000


def new_product_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so listing by id lists by creation time."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def _money(price: Price) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=price.amount_minor, currency_code=price.currency_code)


def _timestamp(us: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(us)
    return stamp


@dataclass(frozen=True, slots=True)
class Page:
    products: list[Product]
    next_page_token: str
    total_size: int


class Catalog:
    """Lists, reads, creates and changes products; records their events in the outbox."""

    def __init__(
        self,
        db: Database,
        *,
        new_id: Callable[[], str] = new_product_id,
        clock: Callable[[], int] = _now_us,
    ) -> None:
        self._db = db
        self._new_id = new_id
        self._clock = clock

    async def list_products(self, query: ListProducts) -> Page:
        query.validate()
        filter_values = (query.category_id, query.query)
        position = PRODUCT_PAGES.decode(query.page_token, *filter_values)
        after = "" if position is None else str(position[0])
        async with self._db.transaction() as session:
            found, total = await ProductRepository(session).page(
                category_id=query.category_id,
                query=query.query,
                after=after,
                limit=query.limit + 1,  # one more tells whether another page follows
            )
        page = found[: query.limit]
        last = page[-1].product_id if len(found) > len(page) else None
        token = "" if last is None else PRODUCT_PAGES.encode((last,), *filter_values)
        return Page(page, token, total)

    async def get_product(self, product_id: str) -> Product:
        if not product_id:
            raise InvalidArgument([FieldViolation("product_id", "must not be empty")])
        async with self._db.transaction() as session:
            product = await ProductRepository(session).get(product_id)
        if product is None:
            raise NotFound(f"no product {product_id}")
        return product

    async def batch_get_products(self, product_ids: Sequence[str]) -> list[Product]:
        """The products in the order asked (duplicates repeated); NOT_FOUND names the
        missing ones. Inactive products are included: orders must still see them."""
        if len(product_ids) > MAX_BATCH:
            raise InvalidArgument(
                [FieldViolation("product_ids", f"must hold at most {MAX_BATCH} ids")]
            )
        async with self._db.transaction() as session:
            found = await ProductRepository(session).get_many(product_ids)
        missing = list(dict.fromkeys(i for i in product_ids if i not in found))
        if missing:
            raise NotFound(f"no products {', '.join(map(repr, missing))}")
        return [found[i] for i in product_ids]

    async def list_categories(self) -> list[Category]:
        """The categories of the listed (active) products, by name."""
        async with self._db.transaction() as session:
            ids = await ProductRepository(session).active_category_ids()
        categories = [Category(i, category_name(i)) for i in ids]
        return sorted(categories, key=lambda c: (c.name.casefold(), c.category_id))

    async def create_product(self, command: CreateProduct) -> Product:
        auth.require_admin()
        command.validate()
        assert command.price is not None  # validate() requires it
        now = self._clock()
        product = Product(
            product_id=self._new_id(),
            sku=command.sku,
            name=command.name,
            description=command.description,
            category_id=command.category_id,
            price=command.price,
            image_url=command.image_url,
            active=True,
            created_at_us=now,
            updated_at_us=now,
        )
        event = events_pb2.ProductCreated(
            product_id=product.product_id,
            sku=product.sku,
            name=product.name,
            category_id=product.category_id,
            price=_money(product.price),
            occur_time=_timestamp(now),
        )
        async with self._db.transaction() as session:
            await ProductRepository(session).add(product)
            await outbox.record(session, STREAM, event, product.product_id)
        return product

    async def update_product(self, command: UpdateProduct) -> Product:
        auth.require_admin()
        command.validate()
        async with self._db.transaction() as session:
            repository = ProductRepository(session)
            before = await repository.get(command.product_id, for_update=True)
            if before is None:
                raise NotFound(f"no product {command.product_id}")
            now = self._clock()
            after = command.apply(before, now)
            if after is before:
                return before
            await repository.save(after)
            if after.price != before.price:
                event = events_pb2.PriceChanged(
                    product_id=after.product_id,
                    sku=after.sku,
                    old_price=_money(before.price),
                    new_price=_money(after.price),
                    occur_time=_timestamp(now),
                )
                await outbox.record(session, STREAM, event, after.product_id)
        return after
