"""Catalog's use cases: reads from memory, writes through the unit of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from google.protobuf.message import Message

from services.catalog import codec
from services.catalog.cache import ProductCache
from services.catalog.domain import (
    MAX_BATCH,
    Category,
    CreateProduct,
    ListProducts,
    Product,
    UpdateProduct,
    category_name,
)
from services.catalog.ports import CatalogUnitOfWork
from services.platform import auth
from services.platform.clock import now_us
from services.platform.errors import FieldViolation, InvalidArgument, NotFound
from services.platform.ids import time_ordered_id
from services.platform.paging import PageTokens

#: ListProducts pages: after the last product id, for one category and search text.
PRODUCT_PAGES = PageTokens("catalog.products.v1", (str,))


@dataclass(frozen=True, slots=True)
class Page:
    products: list[Product]
    next_page_token: str
    total_size: int


@dataclass(slots=True, eq=False)
class Catalog:
    """Lists, reads, creates and changes products; records their events in the outbox.

    Reads are answered from ``cache`` (:meth:`load` fills it before the service serves);
    writes go to the database and, once committed, to the cache.
    """

    uow: CatalogUnitOfWork
    cache: ProductCache = field(default_factory=ProductCache)
    _: KW_ONLY
    new_id: Callable[[], str] = time_ordered_id  # listing by id lists by creation time
    clock: Callable[[], int] = now_us

    async def load(self) -> None:
        """Fills the cache with every product."""
        async with self.uow.read() as tx:
            self.cache.replace_all(await tx.products.all())

    async def refresh(self, product_id: str) -> None:
        """Reloads one product (another replica changed it)."""
        async with self.uow.read() as tx:
            product = await tx.products.get(product_id)
        if product is not None:
            self.cache.put(product)

    async def list_products(self, query: ListProducts) -> Page:
        query.validate()
        filter_values = (query.category_id, query.query)
        position = PRODUCT_PAGES.decode(query.page_token, *filter_values)
        after = "" if position is None else str(position[0])
        found, total = self.cache.page(
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
        product = self.cache.get(product_id)
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
        found = {i: p for i in product_ids if (p := self.cache.get(i)) is not None}
        missing = list(dict.fromkeys(i for i in product_ids if i not in found))
        if missing:
            raise NotFound(f"no products {', '.join(map(repr, missing))}")
        return [found[i] for i in product_ids]

    async def list_categories(self) -> list[Category]:
        """The categories of the listed (active) products, by name."""
        categories = [Category(i, category_name(i)) for i in self.cache.category_ids()]
        return sorted(categories, key=lambda c: (c.name.casefold(), c.category_id))

    async def create_product(self, command: CreateProduct) -> Product:
        auth.require_admin()
        command.validate()
        assert command.price is not None  # validate() requires it
        now = self.clock()
        product = Product(
            product_id=self.new_id(),
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
        async with self.uow.write() as tx:
            await tx.products.add(product)
            await tx.outbox.record(codec.product_created(product), product.product_id)
        self.cache.put(product)
        return product

    async def update_product(self, command: UpdateProduct) -> Product:
        auth.require_admin()
        command.validate()
        async with self.uow.write() as tx:
            before = await tx.products.get(command.product_id, for_update=True)
            if before is None:
                raise NotFound(f"no product {command.product_id}")
            after = command.apply(before, self.clock())
            if after is before:
                return before
            await tx.products.save(after)
            events: list[tuple[Message, str]] = [(codec.product_updated(after), after.product_id)]
            if after.price != before.price:
                events.insert(0, (codec.price_changed(before, after), after.product_id))
            await tx.outbox.record_many(events)
        self.cache.put(after)
        return after
