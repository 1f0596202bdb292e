"""Order's queries (ListOrders, WatchOrder) on a fake unit of work: no I/O, no waiting on
the wall clock (a watch is woken by the commits of the fake, as by the real one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from services.order.domain import OrderStatus
from services.order.saga import Outcome
from services.platform import auth
from services.platform.errors import InvalidArgument
from tests.support.order_shop import (
    ALICE,
    BOB,
    NOW,
    OrderShop,
    dispatched,
    open_shop,
    order_command,
)


@pytest.fixture
def shop() -> Iterator[OrderShop]:
    with open_shop() as opened:
        yield opened


# -- ListOrders and WatchOrder ---------------------------------------------------------------


async def test_list_orders_pages_the_callers_orders_newest_first(shop: OrderShop) -> None:
    for n, at in enumerate([0, 1, 2, 2, 3]):  # order-3 and order-4 in the same microsecond
        shop.now = NOW + at
        await shop.place(order_command(f"key-{n}"))
    auth.set_caller(BOB)
    await shop.place(order_command("key-b"))
    auth.set_caller(ALICE)

    pages, token = [], ""
    while True:
        views, token = await shop.list(2, token)
        pages.append([view.order_id for view in views])
        if not token:
            break

    assert pages == [["order-5", "order-4"], ["order-3", "order-2"], ["order-1"]]
    everything, last = await shop.list(0)  # the default page size
    ids = ["order-5", "order-4", "order-3", "order-2", "order-1"]
    assert ([view.order_id for view in everything], last) == (ids, "")


async def test_a_page_token_is_good_only_for_its_caller_and_sizes_are_bounded(
    shop: OrderShop,
) -> None:
    for n in range(3):
        await shop.place(order_command(f"key-{n}"))
    _, token = await shop.list(1)
    assert token
    auth.set_caller(BOB)
    with pytest.raises(InvalidArgument):
        await shop.list(1, token)
    with pytest.raises(InvalidArgument):
        await shop.list(101)


async def test_watching_yields_the_order_then_each_status_change_until_a_final_one(
    shop: OrderShop,
) -> None:
    await shop.place()
    watch = shop.watch("order-1")
    first = await anext(watch)
    shop.now += 10
    await shop.end_saga("order-1", Outcome.CONFIRMED)
    shop.now += 10
    await shop.deliver(dispatched("order-1", at_us=NOW + 15))

    rest = [change async for change in watch]

    assert (first.previous, first.order.status, first.at_us) == (None, OrderStatus.PENDING, NOW)
    assert [(c.previous, c.order.status, c.at_us) for c in rest] == [
        (OrderStatus.PENDING, OrderStatus.CONFIRMED, NOW + 10),
        (OrderStatus.CONFIRMED, OrderStatus.SHIPPED, NOW + 15),
    ]
    assert rest[-1].order == await shop.get("order-1")  # the fold equals the read model


async def test_a_watcher_is_woken_by_the_commit_of_a_change(shop: OrderShop) -> None:
    await shop.place()
    watch = shop.watch("order-1")
    await anext(watch)
    waiting = asyncio.ensure_future(anext(watch))
    for _ in range(5):
        await asyncio.sleep(0)  # lets the watcher read, find nothing and wait
    assert not waiting.done()

    await shop.end_saga("order-1", Outcome.CONFIRMED)
    async with asyncio.timeout(5):  # it rechecks only every 60 s: the commit woke it
        change = await waiting
    assert (change.previous, change.order.status) == (OrderStatus.PENDING, OrderStatus.CONFIRMED)
    await watch.aclose()


async def test_a_watch_ends_at_its_timeout_on_an_order_that_does_not_change(
    shop: OrderShop,
) -> None:
    await shop.place()
    changes = [change async for change in shop.watch("order-1", timeout=0)]
    assert [change.order.status for change in changes] == [OrderStatus.PENDING]
