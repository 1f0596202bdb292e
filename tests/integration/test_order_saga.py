"""The order saga end to end, with the real identity, catalog, inventory, payment (and, for
shipping, fulfillment and Redis) services in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import functools
import os
import socket
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from emporium.fulfillment.v1 import events_pb2 as fulfillment_events
from emporium.fulfillment.v1 import fulfillment_service_pb2 as fulfillment_pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as fulfillment_grpc
from emporium.order.v1 import order_service_pb2 as pb
from emporium.order.v1 import order_service_pb2_grpc as pb_grpc
from emporium.payment.v1 import payment_service_pb2 as payment_pb

from services.fulfillment import main as fulfillment_main
from services.order import main as order_main
from services.order.repository import unit_of_work
from services.order.saga import Step
from services.order.shipments import ShipmentRecorder
from services.platform import outbox
from services.platform.db import Database
from services.platform.embedded_redis import EmbeddedRedis
from services.platform.errors import FailedPrecondition
from tests.integration.test_order_service import (  # the shared harness and its fixtures
    DECLINE,
    Gate,
    Shop,
    _shops,
    eventually,
    execute,
    gate,
    order_settings,
    rows,
    shop,
)
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bearer

__all__ = ["_shops", "gate", "shop"]  # fixtures used by this module's tests

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> str:
    """An address nobody listens on (a dependency that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def _idle(order_url: str) -> None:
    """Until no saga runs in the order database at ``order_url``."""

    async def ended() -> bool:
        running = await rows(order_url, "SELECT count(*) FROM sagas WHERE status = 'running'")
        return running == [(0,)]

    await eventually(ended, timeout=60)


@asynccontextmanager
async def _order_service(
    shop: Shop,
    backend: str,
    tmp: Path,
    identity: servers.Running,
    down: str = "",
    **env: str,
) -> AsyncIterator[tuple[servers.Running, pb_grpc.OrderServiceAsyncStub, str]]:
    """An extra order service with a database of its own, in front of the shop's services
    (but for the ``down`` one, which it finds nobody listening for)."""
    targets = {**shop.targets, **({down: _closed_port()} if down else {})}
    async with fresh_database(backend, tmp, "order") as url:
        settings = order_settings(url, targets, identity.target, **env)
        async with servers.serve(order_main.build, settings) as running:
            yield running, pb_grpc.OrderServiceStub(running.channel), url


async def test_an_order_for_stock_with_a_good_card_is_confirmed_and_paid_once(shop: Shop) -> None:
    product = await shop.product(price=1999, stock=7)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 3))
    final = await shop.settled(who, order.order_id)
    assert final.status == pb.ORDER_STATUS_CONFIRMED
    assert final.version == 2
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (4, 0, 3)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.payment_id == final.payment_id
    assert payment.status == payment_pb.PAYMENT_STATUS_CAPTURED
    assert payment.captured_amount.amount_minor == 3 * 1999 == final.total.amount_minor


async def test_a_declined_card_rejects_the_order_and_releases_the_stock(shop: Shop) -> None:
    product = await shop.product(stock=5)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 2), number=DECLINE)
    final = await shop.settled(who, order.order_id)
    assert final.status == pb.ORDER_STATUS_REJECTED
    assert final.rejection_reason == "payment declined: card declined"
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (5, 0, 0)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == payment_pb.PAYMENT_STATUS_DECLINED
    assert final.payment_id == payment.payment_id


async def test_out_of_stock_rejects_the_order_without_any_payment(shop: Shop) -> None:
    scarce, plenty = await shop.product(stock=1), await shop.product(stock=10)
    who = shop.user()
    order = await shop.place(who, (plenty.product_id, 1), (scarce.product_id, 2))
    final = await shop.settled(who, order.order_id)
    assert final.status == pb.ORDER_STATUS_REJECTED
    assert final.rejection_reason == f"out of stock: {scarce.sku}"
    assert await shop.payments_of(order.order_id) == []
    assert (await shop.stock(plenty.sku)).available == 10


async def test_fifty_concurrent_orders_for_ten_items_confirm_exactly_ten(shop: Shop) -> None:
    product = await shop.product(stock=10)
    lowest: list[int] = []
    done = asyncio.Event()

    async def watch_stock() -> None:
        while not done.is_set():
            level = await shop.stock(product.sku)
            lowest.append(min(level.available, level.reserved, level.sold))
            await asyncio.sleep(0.01)

    monitor = asyncio.create_task(watch_stock())
    users = [shop.user() for _ in range(50)]
    placed = await asyncio.gather(*(shop.place(who, (product.product_id, 1)) for who in users))
    await _idle(shop.urls["order"])
    done.set()
    await monitor
    finals = [await shop.get(who, o.order_id) for who, o in zip(users, placed, strict=True)]
    statuses = collections.Counter(pb.OrderStatus.Name(o.status) for o in finals)
    assert statuses == {"ORDER_STATUS_CONFIRMED": 10, "ORDER_STATUS_REJECTED": 40}
    reasons = {o.rejection_reason for o in finals if o.status == pb.ORDER_STATUS_REJECTED}
    assert reasons == {f"out of stock: {product.sku}"}
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (0, 0, 10)
    assert lowest
    assert min(lowest) >= 0


async def test_a_saga_interrupted_by_a_restart_resumes_and_ends(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    product = await shop.product(price=500, stock=3)
    who = shop.user()
    async with fresh_database(backend, tmp_path, "order") as url:
        settings = order_settings(url, shop.targets, identity_server.target)
        gate = Gate(Step.AUTHORIZE)  # stop between the reservation and the payment
        held = functools.partial(order_main.build, before_step=gate)
        async with servers.serve(held, settings) as first:
            request = shop.request((product.product_id, 2))
            order = (
                await pb_grpc.OrderServiceStub(first.channel).PlaceOrder(request, metadata=who)
            ).order
            await gate.reached(order.order_id)
        assert (await shop.stock(product.sku)).reserved == 2
        saved = await rows(
            url, "SELECT step, status FROM sagas WHERE order_id = :o", o=order.order_id
        )
        assert saved == [("authorize", "running")]

        async with servers.serve(order_main.build, settings) as second:
            stub = pb_grpc.OrderServiceStub(second.channel)

            async def confirmed() -> bool:
                got = await stub.GetOrder(pb.GetOrderRequest(order_id=order.order_id), metadata=who)
                return got.order.status == pb.ORDER_STATUS_CONFIRMED

            await eventually(confirmed)
        ended = await rows(
            url, "SELECT status, card_json FROM sagas WHERE order_id = :o", o=order.order_id
        )
        assert ended == [("ended", None)]  # the card is wiped once the saga ends
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (1, 0, 2)
    payments = await shop.payments_of(order.order_id)
    assert [p.status for p in payments] == [payment_pb.PAYMENT_STATUS_CAPTURED]


async def test_a_watch_on_one_instance_sees_what_another_instance_commits(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    """Two order instances on one database: the saga runs on the first, the customer
    watches through the second, which hears of the confirmation from its shared poll of
    the watched orders' versions (no commit of its own to wake it)."""
    product = await shop.product(price=700, stock=2)
    who = shop.user()
    async with fresh_database(backend, tmp_path, "order") as url:
        settings = order_settings(url, shop.targets, identity_server.target)
        gate = Gate(Step.AUTHORIZE)
        holding = functools.partial(order_main.build, before_step=gate)
        async with (
            servers.serve(holding, settings) as first,
            servers.serve(order_main.build, settings) as second,
        ):
            request = shop.request((product.product_id, 1))
            order = (
                await pb_grpc.OrderServiceStub(first.channel).PlaceOrder(request, metadata=who)
            ).order
            await gate.reached(order.order_id)
            call = pb_grpc.OrderServiceStub(second.channel).WatchOrder(
                pb.WatchOrderRequest(order_id=order.order_id), metadata=who, timeout=60
            )
            changes = call.__aiter__()
            assert (await changes.__anext__()).status == pb.ORDER_STATUS_PENDING
            gate.open()
            change = await asyncio.wait_for(changes.__anext__(), timeout=30)
            assert (change.status, change.previous_status) == (
                pb.ORDER_STATUS_CONFIRMED,
                pb.ORDER_STATUS_PENDING,
            )
            call.cancel()


async def test_payment_down_past_the_retry_budget_rejects_and_releases(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    product = await shop.product(stock=2)
    who = shop.user()
    async with _order_service(
        shop,
        backend,
        tmp_path,
        identity_server,
        down="payment",
        EMPORIUM_SAGA_RETRY_BUDGET_SECONDS="0.5",
        EMPORIUM_SAGA_RETRY_BASE_SECONDS="0.02",
    ) as (_running, stub, url):
        request = shop.request((product.product_id, 2))
        order = (await stub.PlaceOrder(request, metadata=who)).order
        await _idle(url)
        final = (
            await stub.GetOrder(pb.GetOrderRequest(order_id=order.order_id), metadata=who)
        ).order
    assert final.status == pb.ORDER_STATUS_REJECTED
    assert final.rejection_reason == "could not authorize the payment: payment UNAVAILABLE"
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved) == (2, 0)


async def test_place_order_is_unavailable_while_the_catalog_is_down(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    async with _order_service(shop, backend, tmp_path, identity_server, down="catalog") as (
        _running,
        stub,
        _url,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            await stub.PlaceOrder(shop.request(("any-product", 1)), metadata=shop.user())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_cancelling_a_confirmed_order_while_fulfillment_is_down_changes_nothing(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    product = await shop.product(price=900, stock=3)
    who = shop.user()
    async with _order_service(shop, backend, tmp_path, identity_server, down="fulfillment") as (
        _running,
        stub,
        url,
    ):
        order = (await stub.PlaceOrder(shop.request((product.product_id, 2)), metadata=who)).order
        await _idle(url)
        get = pb.GetOrderRequest(order_id=order.order_id)
        confirmed = (await stub.GetOrder(get, metadata=who)).order
        assert confirmed.status == pb.ORDER_STATUS_CONFIRMED
        with pytest.raises(grpc.RpcError) as caught:
            await stub.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id), metadata=who)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        after = (await stub.GetOrder(get, metadata=who)).order
    assert (after.status, after.version) == (pb.ORDER_STATUS_CONFIRMED, confirmed.version)
    [payment] = await shop.payments_of(order.order_id)
    assert payment.status == payment_pb.PAYMENT_STATUS_CAPTURED
    stock = await shop.stock(product.sku)
    assert (stock.available, stock.reserved, stock.sold) == (1, 0, 2)


async def test_saga_outcomes_and_durations_are_measured(shop: Shop) -> None:
    product = await shop.product(stock=1)
    who = shop.user()
    order = await shop.place(who, (product.product_id, 1))
    await shop.settled(who, order.order_id)
    registry = shop.order_service.metrics.registry
    confirmed = registry.get_sample_value("emporium_saga_outcomes_total", {"outcome": "confirmed"})
    timed = registry.get_sample_value(
        "emporium_saga_duration_seconds_count", {"outcome": "confirmed"}
    )
    assert confirmed is not None
    assert confirmed >= 1
    assert timed == confirmed


async def test_the_rebuild_command_reproduces_the_read_model_exactly(shop: Shop) -> None:
    for number, stock in ((DECLINE, 1), ("4242424242424242", 1), ("4242424242424242", 0)):
        product = await shop.product(stock=stock)
        await shop.place(shop.user(), (product.product_id, 1), number=number)
    await _idle(shop.urls["order"])
    url = shop.urls["order"]
    query = "SELECT * FROM order_views ORDER BY order_id"
    before = await rows(url, query)
    assert {row[2] for row in before} >= {"CONFIRMED", "REJECTED"}
    await execute(url, "UPDATE order_views SET status = 'SHIPPED', reason = 'corrupted'")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.order.rebuild",
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert await rows(url, query) == before
    assert f"rebuilt the views of {len(before)} orders" in err.decode()


async def test_a_confirmed_order_ships_by_choreography(
    shop: Shop, backend: str, tmp_path: Path, identity_server: servers.Running
) -> None:
    product = await shop.product(stock=2)
    who = shop.user()
    with EmbeddedRedis(tmp_path / "redis") as redis:
        async with (
            fresh_database(backend, tmp_path, "fulfillment") as fulfillment_url,
            servers.serve(
                fulfillment_main.build,
                servers.settings_for(
                    "fulfillment",
                    fulfillment_url,
                    IDENTITY_TARGET=identity_server.target,
                    REDIS_URL=redis.url,
                ),
            ) as fulfillment,
            _order_service(shop, backend, tmp_path, identity_server, REDIS_URL=redis.url) as (
                _running,
                stub,
                _url,
            ),
        ):
            order = (
                await stub.PlaceOrder(shop.request((product.product_id, 1)), metadata=who)
            ).order
            watch = stub.WatchOrder(pb.WatchOrderRequest(order_id=order.order_id), metadata=who)
            changes = [m async for m in _bounded(watch, 30)]
            shipment = await fulfillment_grpc.FulfillmentServiceStub(
                fulfillment.channel
            ).GetShipment(
                fulfillment_pb.GetShipmentRequest(order_id=order.order_id),
                metadata=bearer(shop.tokens.admin),
            )
    assert changes[-1].status == pb.ORDER_STATUS_SHIPPED
    assert changes[-1].previous_status == pb.ORDER_STATUS_CONFIRMED
    assert changes[-1].order.shipment_id == shipment.shipment.shipment_id


async def test_a_shipment_is_recorded_once_and_only_for_a_confirmed_order(
    shop: Shop, gate: Callable[[Step], Gate]
) -> None:
    db = Database(shop.urls["order"], order_main.MIGRATIONS)
    record = unit_of_work(db).event_handler(ShipmentRecorder())  # what the consumer runs
    product = await shop.product()
    who = shop.user()
    held = gate(Step.RESERVE)
    order = await shop.place(who, (product.product_id, 1))
    dispatched = fulfillment_events.ShipmentDispatched(
        shipment_id="ship-1",
        order_id=order.order_id,
        carrier="Emporium Express",
        tracking_number="EX123",
    )
    envelope = outbox.envelope(dispatched, order.order_id)
    try:
        with pytest.raises(FailedPrecondition):  # the consumer retries it later
            async with db.write() as tx:
                await record(tx, envelope)
        held.open()
        assert (await shop.settled(who, order.order_id)).status == pb.ORDER_STATUS_CONFIRMED
        for _ in range(2):  # a redelivery changes nothing
            async with db.write() as tx:
                await record(tx, envelope)
    finally:
        await db.dispose()
    shipped = await shop.get(who, order.order_id)
    assert (shipped.status, shipped.shipment_id, shipped.version) == (
        pb.ORDER_STATUS_SHIPPED,
        "ship-1",
        3,
    )


async def _bounded(
    call: AsyncIterable[pb.WatchOrderResponse], seconds: float
) -> AsyncIterator[pb.WatchOrderResponse]:
    async with asyncio.timeout(seconds):
        async for message in call:
            yield message
