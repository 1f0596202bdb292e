"""OrderService over real gRPC with the real identity, catalog, inventory and payment
services in-process, on SQLite and PostgreSQL: the API (place, get, list, cancel, watch).

The saga's outcomes, concurrency, restarts and the projection rebuild are in
test_order_saga.py, which shares this module's harness.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.common.v1 import money_pb2
from emporium.fulfillment.v1 import fulfillment_service_pb2 as fulfillment_pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as fulfillment_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from emporium.order.v1 import events_pb2 as order_events
from emporium.order.v1 import order_service_pb2 as pb
from emporium.order.v1 import order_service_pb2_grpc as pb_grpc
from emporium.payment.v1 import payment_service_pb2 as payment_pb
from emporium.payment.v1 import payment_service_pb2_grpc as payment_grpc
from sqlalchemy.ext.asyncio import create_async_engine

from services.catalog import main as catalog_main
from services.fulfillment import main as fulfillment_main
from services.fulfillment.handlers import handle_order_confirmed
from services.fulfillment.repository import SqlFulfillmentTx
from services.inventory import main as inventory_main
from services.order import main as order_main
from services.order.saga import Step
from services.payment import main as payment_main
from services.platform import outbox
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.status import field_violations
from services.platform.uow import SqlUnitOfWork
from tests.conftest import ORDER_SERVICE_SECRET, Tokens
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bearer

APPROVE, DECLINE = "4242424242424242", "4000000000000002"
ADDRESS = pb.ShippingAddress(
    name="Ada Lovelace",
    line1="12 St James's Square",
    city="London",
    postal_code="SW1Y 4LB",
    country_code="GB",
)
Metadata = tuple[tuple[str, str], ...]


def card(number: str = APPROVE) -> pb.PaymentCard:
    return pb.PaymentCard(
        number=number, expiry_month=12, expiry_year=2099, cvc="123", holder_name="Ada Lovelace"
    )


async def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Reads another service's database directly (what its API does not show)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(sql), params)]
    finally:
        await engine.dispose()


async def execute(url: str, sql: str, **params: Any) -> None:
    """Changes another service's database directly (to corrupt it on purpose)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(sql), params)
    finally:
        await engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Gate:
    """A saga test hook: holds every saga that reaches ``step`` until opened."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.held: set[str] = set()
        self._opened = asyncio.Event()

    async def __call__(self, order_id: str, step: Step) -> None:
        if step is self.step:
            self.held.add(order_id)
            await self._opened.wait()

    def open(self) -> None:
        self._opened.set()

    async def reached(self, order_id: str) -> None:
        async def held() -> bool:
            return order_id in self.held

        await eventually(held)


class Gates:
    """The order service's ``before_step`` hook in the shop: the current test's gate."""

    def __init__(self) -> None:
        self.current: Gate | None = None

    async def __call__(self, order_id: str, step: Step) -> None:
        if self.current is not None:
            await self.current(order_id, step)


@dataclass
class Shop:
    """Every service an order needs, and what a test does with them."""

    tokens: Tokens
    targets: dict[str, str]
    urls: dict[str, str]
    catalog: catalog_grpc.CatalogServiceAsyncStub
    inventory: inventory_grpc.InventoryServiceAsyncStub
    payment: payment_grpc.PaymentServiceAsyncStub
    fulfillment: fulfillment_grpc.FulfillmentServiceAsyncStub
    order_service: servers.Running
    gates: Gates
    orders: pb_grpc.OrderServiceAsyncStub = field(init=False)

    def __post_init__(self) -> None:
        self.orders = pb_grpc.OrderServiceStub(self.order_service.channel)

    @property
    def admin(self) -> Metadata:
        return bearer(self.tokens.admin)

    def user(self) -> Metadata:
        return bearer(self.tokens.user(f"user-{uuid.uuid4().hex[:8]}"))

    async def product(self, *, price: int = 1250, stock: int = 10) -> catalog_pb.Product:
        sku = f"SKU-{uuid.uuid4().hex[:10].upper()}"
        request = catalog_pb.CreateProductRequest(
            sku=sku,
            name=f"Test product {sku}",
            description="For an order test.",
            category_id="test-goods",
            price=money_pb2.Money(amount_minor=price, currency_code="EUR"),
        )
        product = (await self.catalog.CreateProduct(request, metadata=self.admin)).product
        if stock:
            adjust = inventory_pb.AdjustStockRequest(sku=sku, delta=stock, reason="restock")
            await self.inventory.AdjustStock(adjust, metadata=self.admin)
        return product

    async def stock(self, sku: str) -> inventory_pb.StockLevel:
        return (await self.inventory.GetStock(inventory_pb.GetStockRequest(sku=sku))).stock

    def request(
        self, *lines: tuple[str, int], number: str = APPROVE, key: str | None = None
    ) -> pb.PlaceOrderRequest:
        return pb.PlaceOrderRequest(
            idempotency_key=key or uuid.uuid4().hex,
            lines=[pb.PlaceOrderLine(product_id=p, quantity=q) for p, q in lines],
            card=card(number),
            shipping_address=ADDRESS,
        )

    async def place(
        self, who: Metadata, *lines: tuple[str, int], number: str = APPROVE
    ) -> pb.Order:
        response = await self.orders.PlaceOrder(self.request(*lines, number=number), metadata=who)
        return response.order

    async def get(self, who: Metadata, order_id: str) -> pb.Order:
        return (
            await self.orders.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=who)
        ).order

    async def settled(self, who: Metadata, order_id: str, timeout: float = 20.0) -> pb.Order:
        """The order once its saga has ended it (no longer PENDING)."""
        last: list[pb.Order] = []

        async def done() -> bool:
            last[:] = [await self.get(who, order_id)]
            return last[0].status != pb.ORDER_STATUS_PENDING

        await eventually(done, timeout)
        return last[0]

    async def payments_of(self, order_id: str) -> list[payment_pb.Payment]:
        ids = await rows(
            self.urls["payment"],
            "SELECT payment_id FROM payments WHERE order_id = :order_id",
            order_id=order_id,
        )
        service = bearer(self.tokens.service("order"))
        return [
            (
                await self.payment.GetPayment(
                    payment_pb.GetPaymentRequest(payment_id=payment_id), metadata=service
                )
            ).payment
            for (payment_id,) in ids
        ]


def order_settings(
    database_url: str, targets: dict[str, str], identity_target: str, **env: str
) -> Settings:
    return servers.settings_for(
        "order",
        database_url,
        IDENTITY_TARGET=identity_target,
        CATALOG_TARGET=targets["catalog"],
        INVENTORY_TARGET=targets["inventory"],
        PAYMENT_TARGET=targets["payment"],
        **({"FULFILLMENT_TARGET": targets["fulfillment"]} if "fulfillment" in targets else {}),
        SERVICE_CREDENTIALS=f"order:{ORDER_SERVICE_SECRET}",
        **{"EMPORIUM_SAGA_RETRY_BUDGET_SECONDS": "60", **env},
    )


@asynccontextmanager
async def open_shop(
    backend: str, tmp: Path, tokens: Tokens, identity: servers.Running
) -> AsyncIterator[Shop]:
    async with AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        targets: dict[str, str] = {}
        running: dict[str, servers.Running] = {}
        builds = {
            "catalog": catalog_main.build,
            "inventory": inventory_main.build,
            "payment": payment_main.build,
            # Without Redis: it ships nothing by itself, and answers CancelShipment.
            "fulfillment": fulfillment_main.build,
        }
        for name, build in builds.items():
            urls[name] = await stack.enter_async_context(fresh_database(backend, tmp, name))
            settings = servers.settings_for(name, urls[name], IDENTITY_TARGET=identity.target)
            running[name] = await stack.enter_async_context(servers.serve(build, settings))
            targets[name] = running[name].target
        urls["order"] = await stack.enter_async_context(fresh_database(backend, tmp, "order"))
        settings = order_settings(urls["order"], targets, identity.target)
        gates = Gates()
        build = functools.partial(order_main.build, before_step=gates)
        order = await stack.enter_async_context(servers.serve(build, settings))
        yield Shop(
            tokens,
            targets,
            urls,
            catalog_grpc.CatalogServiceStub(running["catalog"].channel),
            inventory_grpc.InventoryServiceStub(running["inventory"].channel),
            payment_grpc.PaymentServiceStub(running["payment"].channel),
            fulfillment_grpc.FulfillmentServiceStub(running["fulfillment"].channel),
            order,
            gates,
        )


@pytest.fixture(scope="module")
async def _shops() -> AsyncIterator[tuple[AsyncExitStack, dict[str, Shop]]]:
    async with AsyncExitStack() as stack:
        yield stack, {}


@pytest.fixture
async def shop(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    tokens: Tokens,
    identity_server: servers.Running,
    _shops: tuple[AsyncExitStack, dict[str, Shop]],
) -> AsyncIterator[Shop]:
    """One shop per backend for the module: tests use their own products and users."""
    stack, started = _shops
    if backend not in started:
        tmp = tmp_path_factory.mktemp(f"shop-{backend}")
        started[backend] = await stack.enter_async_context(
            open_shop(backend, tmp, tokens, identity_server)
        )
    shop = started[backend]
    yield shop
    shop.gates.current = None


@pytest.fixture
def gate(shop: Shop) -> Callable[[Step], Gate]:
    def install(step: Step) -> Gate:
        gate = Gate(step)
        shop.gates.current = gate
        return gate

    return install


# --- PlaceOrder -----------------------------------------------------------------------------


async def test_place_order_prices_every_line_from_the_catalog(shop: Shop) -> None:
    book, pen = await shop.product(price=1250), await shop.product(price=199)
    order = await shop.place(shop.user(), (book.product_id, 2), (pen.product_id, 3))
    assert order.status == pb.ORDER_STATUS_PENDING
    assert order.version == 1
    assert [(line.sku, line.quantity, line.unit_price.amount_minor) for line in order.lines] == [
        (book.sku, 2, 1250),
        (pen.sku, 3, 199),
    ]
    assert [line.line_total.amount_minor for line in order.lines] == [2500, 597]
    assert (order.total.amount_minor, order.total.currency_code) == (3097, "EUR")
    assert order.shipping_address == ADDRESS


def test_a_client_cannot_send_prices() -> None:
    fields = {f.name for f in pb.PlaceOrderLine.DESCRIPTOR.fields}
    assert fields == {"product_id", "quantity"}


async def test_place_order_twice_with_the_same_key_makes_one_order(shop: Shop) -> None:
    product = await shop.product()
    who = shop.user()
    request = shop.request((product.product_id, 1))
    first = (await shop.orders.PlaceOrder(request, metadata=who)).order
    again = (await shop.orders.PlaceOrder(request, metadata=who)).order
    assert again.order_id == first.order_id
    listed = await shop.orders.ListOrders(pb.ListOrdersRequest(), metadata=who)
    assert [o.order_id for o in listed.orders] == [first.order_id]


async def test_reusing_a_key_for_another_request_is_a_failed_precondition(shop: Shop) -> None:
    product = await shop.product()
    who = shop.user()
    await shop.orders.PlaceOrder(shop.request((product.product_id, 1), key="k-1"), metadata=who)
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.PlaceOrder(shop.request((product.product_id, 2), key="k-1"), metadata=who)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_same_key_of_two_users_makes_two_orders(shop: Shop) -> None:
    product = await shop.product()
    request = shop.request((product.product_id, 1), key="shared-key")
    first = (await shop.orders.PlaceOrder(request, metadata=shop.user())).order
    second = (await shop.orders.PlaceOrder(request, metadata=shop.user())).order
    assert first.order_id != second.order_id


@pytest.mark.parametrize(
    ("mutate", "field_name"),
    [
        (lambda r: r.ClearField("idempotency_key"), "idempotency_key"),
        (lambda r: r.ClearField("lines"), "lines"),
        (lambda r: setattr(r.lines[0], "quantity", 0), "lines[0].quantity"),
        (lambda r: setattr(r.lines[0], "quantity", 101), "lines[0].quantity"),
        (lambda r: setattr(r.card, "number", "1234"), "card.number"),
        (lambda r: setattr(r.card, "expiry_month", 13), "card.expiry_month"),
        (
            lambda r: setattr(r.shipping_address, "country_code", "Germany"),
            "shipping_address.country_code",
        ),
    ],
)
async def test_place_order_rejects_bad_input_naming_the_field(
    shop: Shop, mutate: Callable[[pb.PlaceOrderRequest], None], field_name: str
) -> None:
    request = shop.request(("any-product", 1))
    mutate(request)
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.PlaceOrder(request, metadata=shop.user())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_name in field_violations(caught.value)


async def test_unknown_and_inactive_products_are_invalid_naming_the_line(shop: Shop) -> None:
    good, retired = await shop.product(), await shop.product()
    await shop.catalog.UpdateProduct(
        catalog_pb.UpdateProductRequest(product_id=retired.product_id, active=False),
        metadata=shop.admin,
    )
    request = shop.request((good.product_id, 1), ("no-such-product", 1), (retired.product_id, 1))
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.PlaceOrder(request, metadata=shop.user())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"lines[1].product_id", "lines[2].product_id"}


async def test_place_order_without_a_token_is_unauthenticated(shop: Shop) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.PlaceOrder(shop.request(("p", 1)))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_saga_outlives_the_deadline_of_the_call_that_placed_the_order(
    shop: Shop, gate: Callable[[Step], Gate]
) -> None:
    product = await shop.product()
    who = shop.user()
    held = gate(Step.AUTHORIZE)
    request = shop.request((product.product_id, 1))
    order = (await shop.orders.PlaceOrder(request, metadata=who, timeout=0.3)).order
    await held.reached(order.order_id)
    await asyncio.sleep(0.35)  # past the PlaceOrder call's deadline
    held.open()
    assert (await shop.settled(who, order.order_id)).status == pb.ORDER_STATUS_CONFIRMED


# --- GetOrder / ListOrders ------------------------------------------------------------------


async def test_another_users_order_is_not_found_but_an_admin_reads_it(shop: Shop) -> None:
    product = await shop.product()
    order = await shop.place(shop.user(), (product.product_id, 1))
    stranger = shop.user()
    for call in (
        lambda: shop.orders.GetOrder(
            pb.GetOrderRequest(order_id=order.order_id), metadata=stranger
        ),
        lambda: shop.orders.CancelOrder(
            pb.CancelOrderRequest(order_id=order.order_id), metadata=stranger
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            await call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    watch = shop.orders.WatchOrder(pb.WatchOrderRequest(order_id=order.order_id), metadata=stranger)
    with pytest.raises(grpc.RpcError) as caught:
        await watch.read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await shop.get(shop.admin, order.order_id)).user_id == order.user_id


async def test_get_order_of_an_unknown_id_is_not_found(shop: Shop) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await shop.get(shop.user(), "no-such-order")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_orders_pages_the_callers_orders_newest_first(shop: Shop) -> None:
    product = await shop.product(stock=20)
    who = shop.user()
    placed = [(await shop.place(who, (product.product_id, 1))).order_id for _ in range(5)]
    await shop.place(shop.user(), (product.product_id, 1))  # someone else's
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page = await shop.orders.ListOrders(
            pb.ListOrdersRequest(page_size=2, page_token=token), metadata=who
        )
        assert len(page.orders) <= 2
        seen += [o.order_id for o in page.orders]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(placed))
    everything = await shop.orders.ListOrders(pb.ListOrdersRequest(), metadata=who)
    assert [o.order_id for o in everything.orders] == seen
    assert everything.next_page_token == ""


@pytest.mark.parametrize(
    ("request_", "field_name"),
    [
        (pb.ListOrdersRequest(page_size=101), "page_size"),
        (pb.ListOrdersRequest(page_size=-1), "page_size"),
        (pb.ListOrdersRequest(page_token="not-a-token"), "page_token"),
    ],
)
async def test_list_orders_rejects_a_bad_page_request(
    shop: Shop, request_: pb.ListOrdersRequest, field_name: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.ListOrders(request_, metadata=shop.user())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_name in field_violations(caught.value)


# --- WatchOrder -----------------------------------------------------------------------------


async def test_watch_order_streams_pending_then_confirmed(
    shop: Shop, gate: Callable[[Step], Gate]
) -> None:
    product = await shop.product()
    who = shop.user()
    held = gate(Step.RESERVE)
    order = await shop.place(who, (product.product_id, 1))
    watch = shop.orders.WatchOrder(pb.WatchOrderRequest(order_id=order.order_id), metadata=who)
    first = await watch.read()
    assert isinstance(first, pb.WatchOrderResponse)
    assert (first.status, first.previous_status) == (
        pb.ORDER_STATUS_PENDING,
        pb.ORDER_STATUS_UNSPECIFIED,
    )
    held.open()
    second = await asyncio.wait_for(watch.read(), 15)
    assert isinstance(second, pb.WatchOrderResponse)
    assert (second.previous_status, second.status) == (
        pb.ORDER_STATUS_PENDING,
        pb.ORDER_STATUS_CONFIRMED,
    )
    assert second.order.status == pb.ORDER_STATUS_CONFIRMED
    assert second.order.payment_id
    watch.cancel()


async def test_watch_order_of_a_final_order_sends_it_and_ends(shop: Shop) -> None:
    product = await shop.product(stock=0)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 1))
    await shop.settled(who, order.order_id)
    watch = shop.orders.WatchOrder(pb.WatchOrderRequest(order_id=order.order_id), metadata=who)
    messages = [message async for message in watch]
    assert [m.status for m in messages] == [pb.ORDER_STATUS_REJECTED]
    assert await watch.code() == grpc.StatusCode.OK


# --- CancelOrder ----------------------------------------------------------------------------


async def test_cancelling_a_pending_order_compensates_and_ends_cancelled(
    shop: Shop, gate: Callable[[Step], Gate]
) -> None:
    product = await shop.product(stock=5)
    who = shop.user()
    held = gate(Step.AUTHORIZE)
    order = await shop.place(who, (product.product_id, 2))
    await held.reached(order.order_id)
    assert (await shop.stock(product.sku)).reserved == 2

    async def cancel_order() -> pb.CancelOrderResponse:
        request = pb.CancelOrderRequest(order_id=order.order_id, reason="changed my mind")
        return await shop.orders.CancelOrder(request, metadata=who)

    cancel = asyncio.create_task(cancel_order())

    async def requested() -> bool:
        found = await rows(
            shop.urls["order"],
            "SELECT cancel_reason FROM sagas WHERE order_id = :order_id",
            order_id=order.order_id,
        )
        return found == [("changed my mind",)]

    await eventually(requested)
    held.open()
    cancelled = (await asyncio.wait_for(cancel, 15)).order
    assert cancelled.status == pb.ORDER_STATUS_CANCELLED
    assert cancelled.rejection_reason == "changed my mind"
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (5, 0, 0)
    for payment in await shop.payments_of(order.order_id):
        assert payment.status in (
            payment_pb.PAYMENT_STATUS_VOIDED,
            payment_pb.PAYMENT_STATUS_REFUNDED,
        )


async def test_cancelling_a_confirmed_order_refunds_and_restocks(shop: Shop) -> None:
    product = await shop.product(price=800, stock=4)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 3))
    assert (await shop.settled(who, order.order_id)).status == pb.ORDER_STATUS_CONFIRMED
    response = await shop.orders.CancelOrder(
        pb.CancelOrderRequest(order_id=order.order_id), metadata=who
    )
    assert response.order.status == pb.ORDER_STATUS_CANCELLED
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (4, 0, 0)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == payment_pb.PAYMENT_STATUS_REFUNDED
    assert payment.refunded_amount.amount_minor == 2400
    shipment = await shop.fulfillment.GetShipment(
        fulfillment_pb.GetShipmentRequest(order_id=order.order_id), metadata=shop.admin
    )
    assert shipment.shipment.status == fulfillment_pb.SHIPMENT_STATUS_CANCELLED
    again = await shop.orders.CancelOrder(
        pb.CancelOrderRequest(order_id=order.order_id), metadata=who
    )
    assert again.order.status == pb.ORDER_STATUS_CANCELLED  # idempotent
    assert again.order.version == response.order.version


async def dispatch(shop: Shop, order: pb.Order) -> None:
    """Fulfillment ships ``order``: its OrderConfirmed effect, as its consumer would run it."""
    confirmed = order_events.OrderConfirmed(
        order_id=order.order_id,
        user_id=order.user_id,
        payment_id=order.payment_id,
        shipping_address=order.shipping_address,
    )
    db = Database(shop.urls["fulfillment"], fulfillment_main.MIGRATIONS)
    try:
        async with SqlUnitOfWork(db, SqlFulfillmentTx).write() as tx:
            await handle_order_confirmed(tx, outbox.envelope(confirmed, order.order_id))
    finally:
        await db.dispose()


async def test_cancelling_a_dispatched_order_is_refused_and_changes_nothing(shop: Shop) -> None:
    product = await shop.product(price=800, stock=4)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 1))
    confirmed = await shop.settled(who, order.order_id)
    assert confirmed.status == pb.ORDER_STATUS_CONFIRMED
    # Fulfillment takes the order's OrderConfirmed (as its consumer would) and dispatches it.
    await dispatch(shop, confirmed)
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id), metadata=who)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "dispatched" in (caught.value.details() or "")
    after = await shop.get(who, order.order_id)
    assert (after.status, after.version) == (pb.ORDER_STATUS_CONFIRMED, confirmed.version)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == payment_pb.PAYMENT_STATUS_CAPTURED
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (3, 0, 1)


async def test_cancelling_a_rejected_order_is_a_failed_precondition(shop: Shop) -> None:
    product = await shop.product(stock=0)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 1))
    assert (await shop.settled(who, order.order_id)).status == pb.ORDER_STATUS_REJECTED
    with pytest.raises(grpc.RpcError) as caught:
        await shop.orders.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id), metadata=who)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
