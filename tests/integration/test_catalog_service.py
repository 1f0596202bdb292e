"""CatalogService over real gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from emporium.catalog.v1 import events_pb2
from emporium.common.v1 import money_pb2
from sqlalchemy.ext.asyncio import create_async_engine

from services.catalog import main as catalog_main
from services.identity.tokens import SigningKey
from services.platform.outbox import outbox
from services.platform.status import field_violations
from tests.busapp import eventually
from tests.conftest import Tokens
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bad_tokens, bearer


@dataclass
class Catalog:
    stub: pb_grpc.CatalogServiceAsyncStub  # what the stub is over an aio channel (.pyi only)
    database_url: str
    tokens: Tokens

    @property
    def admin(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.tokens.admin)

    async def create(self, **overrides: Any) -> pb.Product:
        response = await self.stub.CreateProduct(_product(**overrides), metadata=self.admin)
        return response.product

    async def update(self, product_id: str, **fields: Any) -> pb.Product:
        request = pb.UpdateProductRequest(product_id=product_id, **fields)
        return (await self.stub.UpdateProduct(request, metadata=self.admin)).product

    async def outbox_events(self, product_id: str) -> list[tuple[str, bytes]]:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(
                    sa.select(outbox.c.event_type, outbox.c.payload, outbox.c.stream)
                    .where(outbox.c.aggregate_id == product_id)
                    .order_by(outbox.c.id)
                )
                rows = result.all()
        finally:
            await engine.dispose()
        assert {stream for _, _, stream in rows} <= {"catalog"}
        return [(event_type, bytes(payload)) for event_type, payload, _ in rows]


@asynccontextmanager
async def _serving(
    backend: str, tmp: Path, tokens: Tokens, identity_target: str
) -> AsyncIterator[Catalog]:
    async with fresh_database(backend, tmp, "catalog") as url:
        settings = servers.settings_for("catalog", url, IDENTITY_TARGET=identity_target)
        async with servers.serve(catalog_main.build, settings) as running:
            yield Catalog(pb_grpc.CatalogServiceStub(running.channel), url, tokens)


@pytest.fixture
async def empty_catalog(
    backend: str, tmp: Path, tokens: Tokens, identity_server: servers.Running
) -> AsyncIterator[Catalog]:
    """A catalog with an empty database of its own, for tests that look at everything."""
    async with _serving(backend, tmp, tokens, identity_server.target) as running:
        yield running


@pytest.fixture(scope="module")
async def _shared_stack() -> AsyncIterator[tuple[AsyncExitStack, dict[str, Catalog]]]:
    async with AsyncExitStack() as stack:
        yield stack, {}


@pytest.fixture
async def catalog(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    tokens: Tokens,
    identity_server: servers.Running,
    _shared_stack: tuple[AsyncExitStack, dict[str, Catalog]],
) -> Catalog:
    """One catalog per backend for the module's tests that only look at their own data
    (unique SKUs, names and categories): a fresh database per test costs more than the test."""
    stack, started = _shared_stack
    if backend not in started:
        tmp = tmp_path_factory.mktemp("catalog")
        started[backend] = await stack.enter_async_context(
            _serving(backend, tmp, tokens, identity_server.target)
        )
    return started[backend]


def _sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10].upper()}"


def _eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency_code="EUR")


def _product(**overrides: Any) -> pb.CreateProductRequest:
    values: dict[str, Any] = {
        "sku": _sku(),
        "name": "Espresso Blend Beans 1 kg",
        "description": "Medium-dark roast with notes of cocoa.",
        "category_id": "coffee-and-tea",
        "price": _eur(2490),
        "image_url": "https://img.example.com/espresso.jpg",
    }
    values.update(overrides)
    return pb.CreateProductRequest(**values)


async def _list_all(catalog: Catalog, **request: Any) -> list[pb.Product]:
    """Walks every page (bounded, so a token loop fails the test instead of hanging)."""
    seen: list[pb.Product] = []
    token = ""
    for _ in range(100):
        page = await catalog.stub.ListProducts(pb.ListProductsRequest(page_token=token, **request))
        seen.extend(page.products)
        token = page.next_page_token
        if not token:
            return seen
    raise AssertionError("paging did not end")


def _unique_name() -> str:
    return f"Product {uuid.uuid4().hex}"


async def _assert_untouched(catalog: Catalog, product: pb.Product, rejected_name: str) -> None:
    """Neither the refused update nor the refused create (both named ``rejected_name``)
    left a trace."""
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=product.product_id))
    assert got.product == product
    assert await _list_all(catalog, query=rejected_name) == []


async def _rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        await call
    return caught.value


# --- CreateProduct and GetProduct -----------------------------------------------------------


async def test_create_product_returns_an_active_product_with_server_fields(
    catalog: Catalog,
) -> None:
    sku = _sku()
    product = await catalog.create(sku=sku)
    assert product.product_id
    assert product.sku == sku
    assert (product.name, product.category_id) == ("Espresso Blend Beans 1 kg", "coffee-and-tea")
    assert (product.price.amount_minor, product.price.currency_code) == (2490, "EUR")
    assert product.image_url == "https://img.example.com/espresso.jpg"
    assert product.active
    assert product.create_time.ToMicroseconds() > 0
    assert product.update_time == product.create_time


async def test_get_product_returns_the_created_product(catalog: Catalog) -> None:
    created = await catalog.create()
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=created.product_id))
    assert got.product == created


async def test_get_product_of_an_unknown_id_is_not_found(catalog: Catalog) -> None:
    error = await _rpc_error(catalog.stub.GetProduct(pb.GetProductRequest(product_id="missing")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_get_product_without_an_id_names_the_field(catalog: Catalog) -> None:
    error = await _rpc_error(catalog.stub.GetProduct(pb.GetProductRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "product_id" in field_violations(error)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sku": ""}, "sku"),
        ({"sku": "lower-case"}, "sku"),
        ({"sku": "WITH SPACE"}, "sku"),
        ({"sku": "S" * 65}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 4001}, "description"),
        ({"category_id": ""}, "category_id"),
        ({"category_id": "c" * 65}, "category_id"),
        ({"category_id": "Not A Slug"}, "category_id"),
        ({"price": None}, "price"),
        ({"price": _eur(0)}, "price.amount_minor"),
        ({"price": _eur(-100)}, "price.amount_minor"),
        ({"price": _eur(10**9 + 1)}, "price.amount_minor"),
        ({"price": money_pb2.Money(amount_minor=100, currency_code="eur")}, "price.currency_code"),
        ({"price": money_pb2.Money(amount_minor=100, currency_code="EURO")}, "price.currency_code"),
        ({"price": money_pb2.Money(amount_minor=100)}, "price.currency_code"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
        ({"image_url": "https://x/" + "i" * 2048}, "image_url"),
    ],
)
async def test_create_product_rejects_bad_input_naming_the_field(
    catalog: Catalog, overrides: dict[str, Any], field: str
) -> None:
    request = _product(**{k: v for k, v in overrides.items() if v is not None})
    if overrides.get("price", ...) is None:
        request.ClearField("price")
    error = await _rpc_error(catalog.stub.CreateProduct(request, metadata=catalog.admin))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(error)


async def test_create_product_reports_every_bad_field_at_once(catalog: Catalog) -> None:
    request = _product(sku="", name="", price=_eur(0))
    error = await _rpc_error(catalog.stub.CreateProduct(request, metadata=catalog.admin))
    assert {"sku", "name", "price.amount_minor"} <= set(field_violations(error))


async def test_create_product_accepts_the_boundary_values(catalog: Catalog) -> None:
    product = await catalog.create(
        sku="S" * 64,
        name="n" * 200,
        description="d" * 4000,
        category_id="c" * 64,
        price=_eur(10**9),
        image_url="",
    )
    assert (len(product.sku), len(product.name), len(product.description)) == (64, 200, 4000)
    assert product.price.amount_minor == 10**9


async def test_create_product_rejects_a_duplicate_sku(catalog: Catalog) -> None:
    first = await catalog.create(name=_unique_name())
    duplicate = _product(sku=first.sku, name=f"{first.name} again")
    error = await _rpc_error(catalog.stub.CreateProduct(duplicate, metadata=catalog.admin))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await _list_all(catalog, query=first.name) == [first]


# --- Authentication and authorization --------------------------------------------------------


async def test_admin_rpcs_without_a_token_are_unauthenticated(catalog: Catalog) -> None:
    product, name = await catalog.create(), _unique_name()
    for call in (
        catalog.stub.CreateProduct(_product(name=name)),
        catalog.stub.UpdateProduct(
            pb.UpdateProductRequest(product_id=product.product_id, name=name)
        ),
    ):
        assert (await _rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED
    await _assert_untouched(catalog, product, name)


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "wrong_signature",
        "unknown_kid",
        "alg_none",
        "wrong_audience",
        "wrong_issuer",
        "hs256_with_public_key",
        "garbage",
    ],
)
async def test_admin_rpcs_with_a_bad_token_are_unauthenticated(
    catalog: Catalog, signing_key: SigningKey, kind: str
) -> None:
    product, name = await catalog.create(), _unique_name()
    token = bad_tokens(signing_key, "admin:admin")[kind]
    for call in (
        catalog.stub.CreateProduct(_product(name=name), metadata=bearer(token)),
        catalog.stub.UpdateProduct(
            pb.UpdateProductRequest(product_id=product.product_id, name=name),
            metadata=bearer(token),
        ),
    ):
        assert (await _rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED
    await _assert_untouched(catalog, product, name)


async def test_customers_and_services_may_not_create_or_update_products(
    catalog: Catalog, tokens: Tokens
) -> None:
    product, name = await catalog.create(), _unique_name()
    for token in (tokens.user("user-1"), tokens.service("order")):
        for call in (
            catalog.stub.CreateProduct(_product(name=name), metadata=bearer(token)),
            catalog.stub.UpdateProduct(
                pb.UpdateProductRequest(product_id=product.product_id, name=name),
                metadata=bearer(token),
            ),
        ):
            assert (await _rpc_error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    await _assert_untouched(catalog, product, name)


async def test_reads_are_public_and_ignore_a_bad_token(
    empty_catalog: Catalog, signing_key: SigningKey
) -> None:
    product = await empty_catalog.create()
    expired = bearer(bad_tokens(signing_key, "user-1")["expired"])
    for metadata in ((), expired):
        listed = await empty_catalog.stub.ListProducts(pb.ListProductsRequest(), metadata=metadata)
        got = await empty_catalog.stub.GetProduct(
            pb.GetProductRequest(product_id=product.product_id), metadata=metadata
        )
        batch = await empty_catalog.stub.BatchGetProducts(
            pb.BatchGetProductsRequest(product_ids=[product.product_id]), metadata=metadata
        )
        categories = await empty_catalog.stub.ListCategories(
            pb.ListCategoriesRequest(), metadata=metadata
        )
        assert list(listed.products) == [product]
        assert got.product == product
        assert list(batch.products) == [product]
        assert [c.category_id for c in categories.categories] == ["coffee-and-tea"]


# --- UpdateProduct and events ----------------------------------------------------------------


async def test_update_changes_only_the_fields_that_are_set(catalog: Catalog) -> None:
    before = await catalog.create(description="Original description")
    after = await catalog.update(before.product_id, name="Decaf Blend 1 kg", description="")
    assert after.name == "Decaf Blend 1 kg"
    assert after.description == ""  # an explicitly set empty value is a change too
    assert (after.sku, after.category_id, after.price, after.image_url, after.active) == (
        before.sku,
        before.category_id,
        before.price,
        before.image_url,
        before.active,
    )
    assert after.create_time == before.create_time
    assert after.update_time.ToMicroseconds() > before.update_time.ToMicroseconds()
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=before.product_id))
    assert got.product == after


async def test_update_with_nothing_set_leaves_the_product_unchanged(catalog: Catalog) -> None:
    before = await catalog.create()
    assert await catalog.update(before.product_id) == before
    assert await catalog.update(before.product_id, name=before.name) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"product_id": ""}, "product_id"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"description": "d" * 4001}, "description"),
        ({"category_id": ""}, "category_id"),
        ({"category_id": "c" * 65}, "category_id"),
        ({"price": _eur(0)}, "price.amount_minor"),
        ({"price": _eur(-1)}, "price.amount_minor"),
        ({"price": _eur(10**9 + 1)}, "price.amount_minor"),
        ({"price": money_pb2.Money(amount_minor=100, currency_code="E1R")}, "price.currency_code"),
        ({"image_url": "ftp://img"}, "image_url"),
    ],
)
async def test_update_rejects_bad_input_naming_the_field(
    catalog: Catalog, fields: dict[str, Any], field: str
) -> None:
    product = await catalog.create()
    request = pb.UpdateProductRequest(**{"product_id": product.product_id, **fields})
    error = await _rpc_error(catalog.stub.UpdateProduct(request, metadata=catalog.admin))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(error)
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=product.product_id))
    assert got.product == product


async def test_update_of_an_unknown_product_is_not_found(catalog: Catalog) -> None:
    request = pb.UpdateProductRequest(product_id="missing", name="Anything")
    error = await _rpc_error(catalog.stub.UpdateProduct(request, metadata=catalog.admin))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_create_records_product_created_in_the_outbox(catalog: Catalog) -> None:
    product = await catalog.create()
    events = await catalog.outbox_events(product.product_id)
    assert [event_type for event_type, _ in events] == ["emporium.catalog.v1.ProductCreated"]
    created = events_pb2.ProductCreated.FromString(events[0][1])
    assert (created.product_id, created.sku, created.name, created.category_id) == (
        product.product_id,
        product.sku,
        product.name,
        product.category_id,
    )
    assert created.price == product.price
    assert created.occur_time == product.create_time


async def test_a_price_change_records_price_changed_in_the_outbox(catalog: Catalog) -> None:
    product = await catalog.create(price=_eur(2490))
    await catalog.update(product.product_id, name="Renamed only")
    updated = await catalog.update(product.product_id, price=_eur(2190))
    await catalog.update(product.product_id, price=_eur(2190))  # same price: no event
    assert updated.price == _eur(2190)
    events = await catalog.outbox_events(product.product_id)
    assert [event_type for event_type, _ in events] == [
        "emporium.catalog.v1.ProductCreated",
        "emporium.catalog.v1.ProductUpdated",  # the rename
        "emporium.catalog.v1.PriceChanged",
        "emporium.catalog.v1.ProductUpdated",
    ]
    changed = events_pb2.PriceChanged.FromString(events[2][1])
    assert (changed.product_id, changed.sku) == (product.product_id, product.sku)
    assert (changed.old_price, changed.new_price) == (_eur(2490), _eur(2190))
    assert changed.occur_time == updated.update_time


async def test_another_replicas_writes_reach_this_replicas_memory(
    tmp: Path, tokens: Tokens, identity_server: servers.Running, redis_url: str
) -> None:
    async with fresh_database("sqlite", tmp, "catalog") as url, AsyncExitStack() as stack:
        replicas = []
        for _ in range(2):
            settings = servers.settings_for(
                "catalog", url, IDENTITY_TARGET=identity_server.target, REDIS_URL=redis_url
            )
            running = await stack.enter_async_context(servers.serve(catalog_main.build, settings))
            replicas.append(Catalog(pb_grpc.CatalogServiceStub(running.channel), url, tokens))
        writer, reader = replicas
        product = await writer.create(price=_eur(1000))
        request = pb.GetProductRequest(product_id=product.product_id)

        async def reader_sees(price: money_pb2.Money) -> bool:
            try:
                return (await reader.stub.GetProduct(request)).product.price == price
            except grpc.RpcError:
                return False

        await eventually(lambda: reader_sees(_eur(1000)))
        await writer.update(product.product_id, price=_eur(900))
        await eventually(lambda: reader_sees(_eur(900)))


async def test_a_failed_create_records_no_event(empty_catalog: Catalog) -> None:
    product = await empty_catalog.create()
    error = await _rpc_error(
        empty_catalog.stub.CreateProduct(_product(sku=product.sku), metadata=empty_catalog.admin)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    engine = create_async_engine(empty_catalog.database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(sa.select(sa.func.count()).select_from(outbox))
    finally:
        await engine.dispose()
    assert count == 1


async def test_inactive_products_are_readable_but_not_listed(empty_catalog: Catalog) -> None:
    shown = await empty_catalog.create(category_id="books")
    hidden = await empty_catalog.update(
        (await empty_catalog.create(category_id="kitchen")).product_id, active=False
    )
    assert not hidden.active
    assert await _list_all(empty_catalog) == [shown]
    assert (await empty_catalog.stub.ListProducts(pb.ListProductsRequest())).total_size == 1
    got = await empty_catalog.stub.GetProduct(pb.GetProductRequest(product_id=hidden.product_id))
    assert got.product == hidden
    batch = await empty_catalog.stub.BatchGetProducts(
        pb.BatchGetProductsRequest(product_ids=[hidden.product_id, shown.product_id])
    )
    assert list(batch.products) == [hidden, shown]
    categories = await empty_catalog.stub.ListCategories(pb.ListCategoriesRequest())
    assert [c.category_id for c in categories.categories] == ["books"]
    shown_again = await empty_catalog.update(hidden.product_id, active=True)
    assert shown_again in await _list_all(empty_catalog)


# --- ListProducts ----------------------------------------------------------------------------


async def test_list_products_walks_every_page_exactly_once_in_a_stable_order(
    empty_catalog: Catalog,
) -> None:
    created = [await empty_catalog.create(name=f"Product {i}") for i in range(7)]
    pages: list[list[pb.Product]] = []
    token = ""
    for _ in range(10):
        page = await empty_catalog.stub.ListProducts(
            pb.ListProductsRequest(page_size=3, page_token=token)
        )
        assert page.total_size == 7
        pages.append(list(page.products))
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [p.product_id for page in pages for p in page]
    assert sorted(listed) == sorted(p.product_id for p in created)
    assert listed == sorted(listed)  # ordered by product id, as the contract says
    assert listed == [p.product_id for p in await _list_all(empty_catalog, page_size=3)]


async def test_list_products_pages_stay_consistent_when_products_are_added(
    empty_catalog: Catalog,
) -> None:
    for _ in range(4):
        await empty_catalog.create()
    first = await empty_catalog.stub.ListProducts(pb.ListProductsRequest(page_size=2))
    late = await empty_catalog.create()
    rest = await _list_all(empty_catalog, page_size=2)
    second = await empty_catalog.stub.ListProducts(
        pb.ListProductsRequest(page_size=2, page_token=first.next_page_token)
    )
    ids = [p.product_id for p in first.products] + [p.product_id for p in second.products]
    assert len(set(ids)) == 4
    assert late.product_id in {p.product_id for p in rest}


async def test_list_products_returns_twenty_by_default_and_at_most_one_hundred(
    empty_catalog: Catalog,
) -> None:
    for _ in range(21):
        await empty_catalog.create()
    default = await empty_catalog.stub.ListProducts(pb.ListProductsRequest())
    assert len(default.products) == 20
    assert default.next_page_token
    assert default.total_size == 21
    largest = await empty_catalog.stub.ListProducts(pb.ListProductsRequest(page_size=100))
    assert len(largest.products) == 21
    assert largest.next_page_token == ""


@pytest.mark.parametrize("page_size", [-1, 101])
async def test_list_products_rejects_a_page_size_out_of_range(
    catalog: Catalog, page_size: int
) -> None:
    error = await _rpc_error(catalog.stub.ListProducts(pb.ListProductsRequest(page_size=page_size)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in field_violations(error)


def _forged(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "page_token",
    [
        "not a token",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _forged(["a", "list"]),
        _forged({"k": "orders.v1", "a": "x", "f": "y"}),
        _forged({"k": "catalog.products.v1", "a": 7, "f": "y"}),
        "A" * 1000,
    ],
)
async def test_list_products_rejects_a_malformed_page_token(
    catalog: Catalog, page_token: str
) -> None:
    error = await _rpc_error(
        catalog.stub.ListProducts(pb.ListProductsRequest(page_token=page_token))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in field_violations(error)


async def test_list_products_rejects_a_page_token_issued_for_another_filter(
    empty_catalog: Catalog,
) -> None:
    for _ in range(3):
        await empty_catalog.create(category_id="books")
    page = await empty_catalog.stub.ListProducts(
        pb.ListProductsRequest(page_size=1, category_id="books")
    )
    assert page.next_page_token
    for other in (
        pb.ListProductsRequest(page_token=page.next_page_token),
        pb.ListProductsRequest(page_token=page.next_page_token, category_id="kitchen"),
        pb.ListProductsRequest(page_token=page.next_page_token, category_id="books", query="x"),
    ):
        error = await _rpc_error(empty_catalog.stub.ListProducts(other))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in field_violations(error)
    # The page size may change between pages.
    rest = await empty_catalog.stub.ListProducts(
        pb.ListProductsRequest(page_size=5, category_id="books", page_token=page.next_page_token)
    )
    assert len(rest.products) == 2


async def test_list_products_filters_by_category(empty_catalog: Catalog) -> None:
    books = [await empty_catalog.create(category_id="books") for _ in range(3)]
    await empty_catalog.create(category_id="kitchen")
    listed = await _list_all(empty_catalog, category_id="books", page_size=2)
    assert sorted(p.product_id for p in listed) == sorted(p.product_id for p in books)
    page = await empty_catalog.stub.ListProducts(pb.ListProductsRequest(category_id="books"))
    assert page.total_size == 3
    empty = await empty_catalog.stub.ListProducts(pb.ListProductsRequest(category_id="garden"))
    assert (list(empty.products), empty.total_size, empty.next_page_token) == ([], 0, "")


async def test_list_products_filters_by_text_in_name_or_description_ignoring_case(
    empty_catalog: Catalog,
) -> None:
    by_name = await empty_catalog.create(name="Gooseneck KETTLE", description="Pour-over")
    by_description = await empty_catalog.create(
        name="Tea set", description="Includes a small kettle"
    )
    umlaut = await empty_catalog.create(name="ÜBERGRÖSSE Mug", description="Large")
    literal = await empty_catalog.create(name="100% Arabica_Beans", description="Roasted")
    await empty_catalog.create(name="Chef's Knife", description="Forged steel")

    async def ids(**request: Any) -> set[str]:
        return {p.product_id for p in await _list_all(empty_catalog, **request)}

    assert await ids(query="kettle") == {by_name.product_id, by_description.product_id}
    assert await ids(query="KeTtLe", category_id="coffee-and-tea") == {
        by_name.product_id,
        by_description.product_id,
    }
    assert await ids(query="übergrösse") == {umlaut.product_id}
    # LIKE wildcards in the query are literal text, not patterns.
    assert await ids(query="0% arabica_") == {literal.product_id}
    assert await ids(query="%") == {literal.product_id}
    assert await ids(query="_") == {literal.product_id}
    assert await ids(query="kettle", category_id="books") == set()
    page = await empty_catalog.stub.ListProducts(
        pb.ListProductsRequest(query="kettle", page_size=1)
    )
    assert (len(page.products), page.total_size) == (1, 2)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [({"query": "q" * 201}, "query"), ({"category_id": "Not A Slug"}, "category_id")],
)
async def test_list_products_rejects_a_bad_filter_naming_the_field(
    catalog: Catalog, request_fields: dict[str, Any], field: str
) -> None:
    error = await _rpc_error(catalog.stub.ListProducts(pb.ListProductsRequest(**request_fields)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(error)


# --- BatchGetProducts ------------------------------------------------------------------------


async def test_batch_get_returns_products_in_the_order_asked_with_duplicates(
    catalog: Catalog,
) -> None:
    a, b, c = [await catalog.create() for _ in range(3)]
    ids = [c.product_id, a.product_id, c.product_id, b.product_id]
    batch = await catalog.stub.BatchGetProducts(pb.BatchGetProductsRequest(product_ids=ids))
    assert [p.product_id for p in batch.products] == ids
    assert list(batch.products) == [c, a, c, b]
    empty = await catalog.stub.BatchGetProducts(pb.BatchGetProductsRequest())
    assert list(empty.products) == []


async def test_batch_get_with_an_unknown_id_is_not_found_naming_it(catalog: Catalog) -> None:
    known = await catalog.create()
    request = pb.BatchGetProductsRequest(product_ids=[known.product_id, "ghost-1", "ghost-2"])
    error = await _rpc_error(catalog.stub.BatchGetProducts(request))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    details = error.details() or ""
    assert "ghost-1" in details
    assert "ghost-2" in details
    assert known.product_id not in details


async def test_batch_get_accepts_one_hundred_ids_and_rejects_more(catalog: Catalog) -> None:
    product = await catalog.create()
    hundred = await catalog.stub.BatchGetProducts(
        pb.BatchGetProductsRequest(product_ids=[product.product_id] * 100)
    )
    assert len(hundred.products) == 100
    error = await _rpc_error(
        catalog.stub.BatchGetProducts(
            pb.BatchGetProductsRequest(product_ids=[product.product_id] * 101)
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "product_ids" in field_violations(error)


# --- ListCategories --------------------------------------------------------------------------


async def test_list_categories_lists_the_categories_of_listed_products_by_name(
    empty_catalog: Catalog,
) -> None:
    assert (
        list((await empty_catalog.stub.ListCategories(pb.ListCategoriesRequest())).categories) == []
    )
    for category_id in ("outdoor", "coffee-and-tea", "books", "outdoor", "home-and-garden"):
        await empty_catalog.create(category_id=category_id)
    moved = await empty_catalog.create(category_id="electronics")
    await empty_catalog.update(moved.product_id, category_id="books")
    categories = await empty_catalog.stub.ListCategories(pb.ListCategoriesRequest())
    assert [(c.category_id, c.name) for c in categories.categories] == [
        ("books", "Books"),
        ("coffee-and-tea", "Coffee and Tea"),
        ("home-and-garden", "Home and Garden"),
        ("outdoor", "Outdoor"),
    ]
