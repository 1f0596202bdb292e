"""The catalog in memory: every product, for reads that touch no database.

The catalog is small and read-mostly (every order prices its lines from it), so the
service keeps all of it in memory: loaded at start, updated after each of its own
commits, and reloaded per product when another replica's event says it changed
(:mod:`services.catalog.follower`). A product is only ever replaced by a newer version
(``updated_at_us``), so a late notification cannot bring an old one back. Standard
library only.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from services.catalog.domain import Product, search_text


class ProductCache:
    def __init__(self) -> None:
        self._by_id: dict[str, Product] = {}
        self._listed: list[Product] | None = None  # active products by id, built lazily
        self._listed_ids: list[str] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def replace_all(self, products: Iterable[Product]) -> None:
        self._by_id = {product.product_id: product for product in products}
        self._listed = None

    def put(self, product: Product) -> None:
        current = self._by_id.get(product.product_id)
        if current is not None and current.updated_at_us > product.updated_at_us:
            return
        self._by_id[product.product_id] = product
        self._listed = None

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def listed(self) -> list[Product]:
        """The active products in product id order."""
        if self._listed is None:
            self._listed = sorted(
                (p for p in self._by_id.values() if p.active), key=lambda p: p.product_id
            )
            self._listed_ids = [p.product_id for p in self._listed]
        return self._listed

    def page(
        self, *, category_id: str, query: str, after: str, limit: int
    ) -> tuple[list[Product], int]:
        """Up to ``limit`` active products after ``after`` in product id order, and how
        many active products match the filter in all."""
        listed = self.listed()
        folded = query.casefold()

        def matches(product: Product) -> bool:
            if category_id and product.category_id != category_id:
                return False
            return not folded or folded in search_text(product.name, product.description)

        if not category_id and not folded:
            start = bisect.bisect_right(self._listed_ids, after) if after else 0
            return listed[start : start + limit], len(listed)
        found = [p for p in listed if matches(p)]
        start = bisect.bisect_right([p.product_id for p in found], after) if after else 0
        return found[start : start + limit], len(found)

    def category_ids(self) -> set[str]:
        return {product.category_id for product in self.listed()}
