"""Catalog's domain: products, their validation, categories. Standard library only."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Annotated

from services.platform.errors import Validator
from services.platform.validation import Text, Validated

SKU = re.compile(r"^[A-Z0-9-]{1,64}$")
CATEGORY = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_NAME, MAX_DESCRIPTION, MAX_CATEGORY, MAX_IMAGE_URL = 200, 4000, 64, 2048
MAX_PRICE_MINOR = 10**9
MAX_QUERY = 200
MAX_BATCH = 100
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100

# Words kept lower case inside a category's display name ("home-and-garden" → "Home and Garden").
_SMALL_WORDS = frozenset({"and", "of", "the", "for", "in", "on", "with"})


@dataclass(frozen=True, slots=True)
class Price:
    """A unit price: integer minor units of an ISO 4217 currency."""

    amount_minor: int
    currency_code: str


@dataclass(frozen=True, slots=True)
class Product:
    """A product for sale. Inactive products stay readable but are not listed."""

    product_id: str
    sku: str
    name: str
    description: str
    category_id: str
    price: Price
    image_url: str
    active: bool
    created_at_us: int
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class Category:
    category_id: str
    name: str


def category_name(category_id: str) -> str:
    """The display name derived from a category's slug."""
    words = category_id.split("-")
    return " ".join(
        word if i > 0 and word in _SMALL_WORDS else word.capitalize()
        for i, word in enumerate(words)
    )


def _check_name(v: Validator, value: str) -> None:
    v.text(value, "name", max_len=MAX_NAME)


def _check_description(v: Validator, value: str) -> None:
    v.text(value, "description", max_len=MAX_DESCRIPTION, required=False)


def _check_category(v: Validator, value: str, field: str = "category_id") -> None:
    if v.check(0 < len(value) <= MAX_CATEGORY, field, f"must be 1-{MAX_CATEGORY} characters"):
        v.check(
            bool(CATEGORY.match(value)),
            field,
            "must be a slug: lowercase letters and digits in words joined by '-'",
        )


def _check_image_url(v: Validator, value: str) -> None:
    if v.check(
        len(value) <= MAX_IMAGE_URL, "image_url", f"must be at most {MAX_IMAGE_URL} characters"
    ):
        v.check(
            not value or value.startswith(("https://", "http://", "/")),
            "image_url",
            "must be an http(s) URL or an absolute path",
        )


def _check_price(v: Validator, price: Price | None) -> None:
    if price is None:
        v.check(False, "price", "is required")
        return
    v.positive(price.amount_minor, "price.amount_minor", maximum=MAX_PRICE_MINOR)
    v.check(
        bool(CURRENCY.match(price.currency_code)),
        "price.currency_code",
        "must be an ISO 4217 code: three uppercase letters",
    )


@dataclass(frozen=True, slots=True)
class CreateProduct:
    """Command: add a product to the catalog (it starts active)."""

    sku: str
    name: str
    description: str
    category_id: str
    price: Price | None
    image_url: str = ""

    def validate(self) -> None:
        v = Validator()
        v.check(
            bool(SKU.match(self.sku)),
            "sku",
            "must be 1-64 characters: uppercase letters, digits and '-'",
        )
        _check_name(v, self.name)
        _check_description(v, self.description)
        _check_category(v, self.category_id)
        _check_price(v, self.price)
        _check_image_url(v, self.image_url)
        v.raise_if_any()


@dataclass(frozen=True, slots=True)
class UpdateProduct(Validated):
    """Command: change the fields that are not ``None``."""

    product_id: Annotated[str, Text(64)]
    name: str | None = None
    description: str | None = None
    category_id: str | None = None
    price: Price | None = None
    image_url: str | None = None
    active: bool | None = None

    def check(self, v: Validator) -> None:
        if self.name is not None:
            _check_name(v, self.name)
        if self.description is not None:
            _check_description(v, self.description)
        if self.category_id is not None:
            _check_category(v, self.category_id)
        if self.price is not None:
            _check_price(v, self.price)
        if self.image_url is not None:
            _check_image_url(v, self.image_url)

    def apply(self, product: Product, now_us: int) -> Product:
        """The product after this change; the same object when nothing differs."""
        changed = replace(
            product,
            name=product.name if self.name is None else self.name,
            description=product.description if self.description is None else self.description,
            category_id=product.category_id if self.category_id is None else self.category_id,
            price=product.price if self.price is None else self.price,
            image_url=product.image_url if self.image_url is None else self.image_url,
            active=product.active if self.active is None else self.active,
        )
        return product if changed == product else replace(changed, updated_at_us=now_us)


@dataclass(frozen=True, slots=True)
class ListProducts:
    """Query: one page of the active products matching an optional filter."""

    page_size: int = 0
    page_token: str = ""
    category_id: str = ""
    query: str = ""

    def validate(self) -> None:
        v = Validator()
        v.page_size(self.page_size, maximum=MAX_PAGE_SIZE)
        if self.category_id:
            _check_category(v, self.category_id)
        v.text(self.query, "query", max_len=MAX_QUERY, required=False)
        v.raise_if_any()

    @property
    def limit(self) -> int:
        return self.page_size or DEFAULT_PAGE_SIZE


def search_text(name: str, description: str) -> str:
    """What ``query`` matches against: name and description, case-folded.

    Folding in Python (not with SQL ``lower()``) makes matching identical on SQLite, whose
    ``lower()`` only knows ASCII, and on PostgreSQL.
    """
    return f"{name.casefold()}\n{description.casefold()}"
