"""Orders end to end on the real mesh: six service processes, a real Redis, real gRPC.

Each test buys fresh products (created through catalog and inventory as the admin), so
the tests share one mesh and do not depend on each other. Databases are only ever read,
never written, to check what the APIs do not show.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.payment.v1 import payment_service_pb2 as payment_pb

from tests.support.mesh import (
    DECLINE,
    Mesh,
    Shop,
    eventually,
    logged_methods,
    new_traceparent,
    running_mesh,
)

pytestmark = pytest.mark.slow

PORT_BASE = 24000  # ports 24000-24012; the fault tests use 24100 and up
CONFIRMED, SHIPPED = order_pb.ORDER_STATUS_CONFIRMED, order_pb.ORDER_STATUS_SHIPPED
REJECTED = order_pb.ORDER_STATUS_REJECTED


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("orders-mesh"), PORT_BASE) as running:
        yield running


@pytest.fixture(scope="module")
async def shop(mesh: Mesh) -> AsyncIterator[Shop]:
    client = await Shop(mesh).open()
    yield client
    await client.close()


async def test_an_idle_mesh_leaves_the_cpu_idle(mesh: Mesh) -> None:
    """Nothing busy-loops while no one calls: relays and consumers wait, they do not spin."""
    before = {name: mesh.cpu_seconds(name) for name in mesh.children}
    await asyncio.sleep(3.0)
    used = {name: round(mesh.cpu_seconds(name) - before[name], 2) for name in mesh.children}

    assert max(used.values()) < 0.3, used  # seconds of CPU in 3 s; a spinning loop takes ~3


async def _statuses_watched(shop: Shop, order_id: str) -> list[int]:
    """The statuses WatchOrder streams for the order, until it ends (SHIPPED here)."""
    seen: list[int] = []
    call = shop.orders.WatchOrder(
        order_pb.WatchOrderRequest(order_id=order_id), metadata=shop.customer, timeout=30
    )
    async for change in call:
        seen.append(change.status)
        if change.status in (SHIPPED, REJECTED):
            break
    return seen


async def test_an_approved_order_is_confirmed_then_shipped_within_one_trace(
    mesh: Mesh, shop: Shop
) -> None:
    book = await shop.new_product(price_minor=2599, stock=10)
    lamp = await shop.new_product(price_minor=4150, stock=5)
    traceparent, trace_id = new_traceparent()

    placed = await shop.place([(book, 2), (lamp, 1)], traceparent=traceparent)
    assert placed.status == order_pb.ORDER_STATUS_PENDING
    watched = await asyncio.wait_for(_statuses_watched(shop, placed.order_id), timeout=35)
    order = (await shop.until([placed.order_id], {SHIPPED}, timeout=5))[placed.order_id]

    assert CONFIRMED in watched
    assert watched.index(CONFIRMED) < watched.index(SHIPPED)
    assert watched[-1] == SHIPPED
    assert [line.unit_price.amount_minor for line in order.lines] == [2599, 4150]
    assert order.total.amount_minor == 2 * 2599 + 4150
    assert order.shipment_id
    book_stock, lamp_stock = await shop.stock(book.sku), await shop.stock(lamp.sku)
    assert (book_stock.available, book_stock.reserved, book_stock.sold) == (8, 0, 2)
    assert (lamp_stock.available, lamp_stock.reserved, lamp_stock.sold) == (4, 0, 1)

    payment = await shop.get_payment(order.payment_id)
    assert payment.order_id == order.order_id
    assert payment.status == payment_pb.PAYMENT_STATUS_CAPTURED
    assert payment.captured_amount.amount_minor == 2 * 2599 + 4150
    assert payment.captured_amount.currency_code == "EUR"
    captured = mesh.rows(
        "payment",
        "SELECT captured_minor FROM payments WHERE order_id = ? AND status = 'CAPTURED'",
        [order.order_id],
    )
    assert captured == [(2 * 2599 + 4150,)]

    # One trace: the client's trace id reaches every service on the order's path, over
    # gRPC (access logs) and over the bus (each consumer logs the events it handled).
    async def all_logged() -> bool:
        return "emporium.fulfillment.v1.ShipmentDispatched" in logged_methods(
            mesh, "order", trace_id
        )

    await eventually(all_logged, 10, "order logs the ShipmentDispatched it handled")
    order_side = logged_methods(mesh, "order", trace_id)
    assert "/emporium.order.v1.OrderService/PlaceOrder" in order_side
    assert "/emporium.catalog.v1.CatalogService/BatchGetProducts" in logged_methods(
        mesh, "catalog", trace_id
    )
    assert {
        "/emporium.inventory.v1.InventoryService/ReserveStock",
        "/emporium.inventory.v1.InventoryService/CommitReservation",
    } <= logged_methods(mesh, "inventory", trace_id)
    assert {
        "/emporium.payment.v1.PaymentService/AuthorizePayment",
        "/emporium.payment.v1.PaymentService/CapturePayment",
    } <= logged_methods(mesh, "payment", trace_id)
    assert "emporium.order.v1.OrderConfirmed" in logged_methods(mesh, "fulfillment", trace_id)


async def test_a_declined_card_rejects_the_order_and_releases_its_reservation(
    mesh: Mesh, shop: Shop
) -> None:
    chair = await shop.new_product(price_minor=12900, stock=3)

    placed = await shop.place([(chair, 2)], DECLINE)
    order = (await shop.until([placed.order_id], {REJECTED}, timeout=20))[placed.order_id]

    assert "declined" in order.rejection_reason
    stock = await shop.stock(chair.sku)
    assert (stock.available, stock.reserved, stock.sold) == (3, 0, 0)
    released = mesh.rows(
        "inventory", "SELECT status FROM reservations WHERE order_id = ?", [order.order_id]
    )
    assert released == [("RELEASED",)]
    payment = await shop.get_payment(order.payment_id)
    assert payment.status in (payment_pb.PAYMENT_STATUS_DECLINED, payment_pb.PAYMENT_STATUS_VOIDED)
    assert payment.decline_reason == payment_pb.DECLINE_REASON_CARD_DECLINED
    assert payment.captured_amount.amount_minor == 0


async def test_an_order_for_more_than_the_stock_is_rejected_without_a_payment(
    mesh: Mesh, shop: Shop
) -> None:
    rare = await shop.new_product(price_minor=99900, stock=1)

    placed = await shop.place([(rare, 2)])
    order = (await shop.until([placed.order_id], {REJECTED}, timeout=20))[placed.order_id]

    assert "out of stock" in order.rejection_reason
    assert rare.sku in order.rejection_reason
    assert order.payment_id == ""
    assert mesh.rows("payment", "SELECT * FROM payments WHERE order_id = ?", [order.order_id]) == []
    stock = await shop.stock(rare.sku)
    assert (stock.available, stock.reserved, stock.sold) == (1, 0, 0)


async def test_placing_an_order_twice_with_one_key_makes_one_order(mesh: Mesh, shop: Shop) -> None:
    mug = await shop.new_product(price_minor=1200, stock=10)
    customer = await shop.new_customer()
    key = f"checkout-{uuid.uuid4()}"

    first = await shop.place([(mug, 1)], key=key, customer=customer)
    second = await shop.place([(mug, 1)], key=key, customer=customer)
    await shop.until([first.order_id], {SHIPPED}, timeout=20, customer=customer)

    assert second.order_id == first.order_id
    listed = await shop.orders.ListOrders(
        order_pb.ListOrdersRequest(page_size=10), metadata=customer, timeout=5
    )
    assert [o.order_id for o in listed.orders] == [first.order_id]
    stock = await shop.stock(mug.sku)
    assert (stock.available, stock.sold) == (9, 1)
    assert mesh.rows(
        "payment", "SELECT count(*) FROM payments WHERE order_id = ?", [first.order_id]
    ) == [(1,)]


async def test_fifty_concurrent_orders_for_ten_in_stock_confirm_exactly_ten(
    mesh: Mesh, shop: Shop
) -> None:
    scarce = await shop.new_product(price_minor=500, stock=10)
    seen: list[inventory_pb.StockLevel] = []
    placing = True

    async def watch_stock() -> None:
        while placing:
            with contextlib.suppress(grpc.aio.AioRpcError):  # a slow answer: ask again
                seen.append(await shop.stock(scarce.sku))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_stock())
    try:
        placed = await asyncio.gather(*(shop.place([(scarce, 1)]) for _ in range(50)))
        ended = await shop.until([o.order_id for o in placed], {SHIPPED, REJECTED}, timeout=60)
    finally:
        placing = False
        await watcher

    outcomes = [o.status for o in ended.values()]
    assert outcomes.count(SHIPPED) == 10
    assert outcomes.count(REJECTED) == 40
    assert all("out of stock" in o.rejection_reason for o in ended.values() if o.status == REJECTED)
    assert len(seen) > 1
    assert min(min(level.available, level.reserved, level.sold) for level in seen) >= 0
    assert {level.available + level.reserved + level.sold for level in seen} == {10}
    stock = await shop.stock(scarce.sku)
    assert (stock.available, stock.reserved, stock.sold) == (0, 0, 10)
    captures = mesh.rows(
        "payment",
        "SELECT count(*) FROM payments WHERE status = 'CAPTURED' AND order_id IN "
        f"({','.join('?' * len(ended))})",
        list(ended),
    )
    assert captures == [(10,)]


async def test_a_customer_cannot_take_a_service_accounts_name_and_the_account_still_works(
    mesh: Mesh, shop: Shop
) -> None:
    """Register refuses ``svc-order`` (and the accounts' email domain); the order service's
    own account still logs in, and an order placed afterwards ships (order calls payment
    and inventory with that account's token)."""
    for username, email in [
        ("svc-order", "squatter@example.com"),
        ("squatter", "svc-order@accounts.emporium.invalid"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            await shop.identity.Register(
                identity_pb.RegisterRequest(
                    username=username, email=email, password="correct-horse-battery"
                ),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    login = await shop.identity.Login(
        identity_pb.LoginRequest(username="svc-order", password=mesh.service_secrets["order"]),
        timeout=10,
    )
    assert login.access_token
    refused = identity_pb.LoginRequest(username="svc-order", password="correct-horse-battery")
    with pytest.raises(grpc.RpcError) as caught:
        await shop.identity.Login(refused, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    book = await shop.new_product(price_minor=1200, stock=2)
    placed = await shop.place([(book, 1)])
    order = (await shop.until([placed.order_id], {SHIPPED}, timeout=30))[placed.order_id]
    assert order.status == SHIPPED
