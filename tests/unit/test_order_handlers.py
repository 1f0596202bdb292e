"""Order's commands (PlaceOrder, CancelOrder) and GetOrder on a fake unit of work, catalog,
fulfillment and saga runner: no I/O, no waiting on the wall clock."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from dataclasses import replace

import pytest

from services.order import codec
from services.order.domain import Money, OrderLine, OrderPlaced, OrderStatus
from services.order.handlers import request_hash
from services.order.ports import ShipmentDispatched
from services.order.projector import OrderView
from services.order.saga import Outcome, Step
from services.platform import auth
from services.platform.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tests.support.order_shop import (
    ADDRESS,
    ADMIN,
    BOB,
    CARD,
    LEASE,
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


async def confirmed(shop: OrderShop) -> OrderView:
    view = await shop.place()
    await shop.end_saga(view.order_id, Outcome.CONFIRMED)
    return await shop.get(view.order_id)


# -- PlaceOrder ------------------------------------------------------------------------------


async def test_an_order_is_priced_from_the_catalog_and_stored_with_its_saga_in_one_write(
    shop: OrderShop,
) -> None:
    command = order_command("key-1", ("p-tea", 2), ("p-mug", 1))
    view = await shop.place(command)

    assert (view.order_id, view.user_id, view.status, view.version) == (
        "order-1",
        "alice",
        OrderStatus.PENDING,
        1,
    )
    assert view.lines == (
        OrderLine("p-tea", "TEA-1", "Assam tea", 2, Money(450, "EUR")),
        OrderLine("p-mug", "MUG-1", "Mug", 1, Money(1200, "EUR")),
    )
    assert (view.total, view.address) == (Money(2100, "EUR"), ADDRESS)
    assert view.created_at_us == view.updated_at_us == NOW
    assert shop.catalog.calls == [["p-tea", "p-mug"]]
    assert shop.uow.writes == 1
    [placed] = shop.uow.state.events("order-1")
    assert isinstance(placed, OrderPlaced)
    assert (placed.idempotency_key, placed.lines) == ("key-1", view.lines)
    assert shop.uow.outbox.event_types() == ["OrderPlaced"]
    assert shop.uow.outbox.committed[0].aggregate_id == "order-1"
    saga = shop.uow.state.sagas["order-1"]
    assert (saga["step"], saga["status"], saga["version"]) == (Step.RESERVE.value, "running", 0)
    assert (saga["owner"], saga["lease_expires_us"]) == (LEASE.owner, LEASE.expiry(NOW))
    assert codec.card_from_json(saga["card_json"]) == CARD
    assert shop.uow.state.requests == {("alice", "key-1"): (request_hash(command), "order-1")}
    assert shop.runner.started == ["order-1"]
    assert await shop.get("order-1") == view


async def test_the_new_saga_is_handed_to_its_run_as_the_store_would_load_it(
    shop: OrderShop,
) -> None:
    await shop.place(order_command("key-1", ("p-tea", 2), ("p-mug", 1)))

    handed = shop.runner.states["order-1"]
    assert handed is not None  # the first run does not read back what PlaceOrder wrote
    assert handed == await shop.store.load("order-1")
    assert handed.lines == (("TEA-1", 2), ("MUG-1", 1))


async def test_unknown_and_withdrawn_products_are_refused_and_nothing_is_written(
    shop: OrderShop,
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        await shop.place(order_command("key-1", ("p-tea", 1), ("p-none", 1), ("p-old", 1)))
    fields = [violation.field for violation in raised.value.violations]
    assert fields == ["lines[1].product_id", "lines[2].product_id"]
    assert shop.uow.writes == 0
    assert (shop.uow.state.streams, shop.uow.state.requests) == ({}, {})
    assert shop.runner.started == []


async def test_an_invalid_card_is_refused_before_anything_is_read(shop: OrderShop) -> None:
    bad = replace(order_command(), card=replace(CARD, number="4242424242424241"))
    with pytest.raises(InvalidArgument):
        await shop.place(bad)
    assert (shop.catalog.calls, shop.uow.reads, shop.uow.writes) == ([], 0, 0)


async def test_a_replayed_request_answers_the_same_order_without_writing_again(
    shop: OrderShop,
) -> None:
    first = await shop.place(order_command("key-1"))
    again = await shop.place(order_command("key-1"))

    assert again == first
    assert (shop.uow.writes, len(shop.catalog.calls)) == (1, 1)
    assert shop.runner.started == ["order-1"]
    assert shop.uow.outbox.event_types() == ["OrderPlaced"]


async def test_a_key_used_for_a_different_request_is_a_failed_precondition(
    shop: OrderShop,
) -> None:
    await shop.place(order_command("key-1", ("p-tea", 1)))
    with pytest.raises(FailedPrecondition):
        await shop.place(order_command("key-1", ("p-tea", 2)))
    assert list(shop.uow.state.streams) == ["order-1"]


async def test_idempotency_keys_are_per_user(shop: OrderShop) -> None:
    mine = await shop.place(order_command("key-1"))
    auth.set_caller(BOB)
    theirs = await shop.place(order_command("key-1"))
    assert (mine.order_id, theirs.order_id, theirs.user_id) == ("order-1", "order-2", "bob")


async def test_a_concurrent_request_with_the_same_key_answers_the_order_that_won(
    shop: OrderShop,
) -> None:
    command = order_command("key-1")
    rival: list[OrderView] = []

    async def same_request_elsewhere() -> None:
        rival.append(await shop.place(command))

    shop.catalog.meanwhile = same_request_elsewhere  # commits while this one asks the catalog
    answer = await shop.place(command)

    assert answer == rival[0]
    assert answer.order_id == "order-1"  # this request's order-2 lost to DuplicateRequest
    assert list(shop.uow.state.streams) == list(shop.uow.state.sagas) == ["order-1"]
    assert "order-2" not in shop.uow.state.views
    assert shop.uow.outbox.event_types() == ["OrderPlaced"]
    assert shop.runner.started == ["order-1"]


# -- CancelOrder -----------------------------------------------------------------------------


async def test_cancelling_a_pending_order_records_the_request_once_and_wakes_its_saga(
    shop: OrderShop,
) -> None:
    await shop.place()
    shop.now += 5
    view = await shop.cancel("order-1", "  changed my mind ")
    shop.now += 5
    again = await shop.cancel("order-1", "another reason")

    assert view.status is again.status is OrderStatus.PENDING  # until its saga compensates
    saga = shop.uow.state.sagas["order-1"]
    assert (saga["cancel_reason"], saga["updated_at_us"]) == ("changed my mind", NOW + 5)
    assert saga["version"] == 0  # the saga's own writes are not fenced off by a cancel
    assert shop.runner.poked == ["order-1", "order-1"]
    assert shop.runner.started == ["order-1"]
    assert shop.fulfillment.calls == []
    assert len(shop.uow.state.events("order-1")) == 1


@pytest.mark.parametrize(
    ("refusal", "error"),
    [(ShipmentDispatched("order-1"), FailedPrecondition), (Unavailable("down"), Unavailable)],
)
async def test_a_confirmed_order_fulfillment_does_not_agree_to_cancel_stays_as_it_is(
    shop: OrderShop, refusal: Exception, error: type[Exception]
) -> None:
    await confirmed(shop)
    before = copy.deepcopy(shop.uow.state)
    shop.fulfillment.refusal = refusal

    with pytest.raises(error):
        await shop.cancel("order-1", "too late?")

    assert shop.fulfillment.calls == [("order-1", "too late?")]
    assert shop.uow.state == before
    assert shop.runner.started == ["order-1"]


async def test_a_confirmed_order_fulfillment_agrees_to_cancel_is_reopened_to_compensate(
    shop: OrderShop,
) -> None:
    await confirmed(shop)
    shop.now += 10
    view = await shop.cancel("order-1")

    assert view.status is OrderStatus.CONFIRMED  # until it is refunded and restocked
    assert shop.fulfillment.calls == [("order-1", "cancelled by the customer")]
    assert shop.runner.started == ["order-1", "order-1"]
    state = await shop.store.load("order-1")
    assert state is not None
    assert (state.step, state.compensate_from) == (Step.COMPENSATE, Step.COMPLETE)
    assert (state.outcome, state.cancel_reason) == (Outcome.CANCELLED, "cancelled by the customer")
    assert (state.payment_id, state.authorized, state.captured) == ("pay-1", True, True)
    assert (state.card, state.started_at_us) == (None, NOW + 10)

    await shop.cancel("order-1", "again")  # it compensates already: nobody is asked again
    assert len(shop.fulfillment.calls) == 1
    assert shop.runner.poked == ["order-1"]

    await shop.store.finish(state)
    cancelled = await shop.get("order-1")
    assert (cancelled.status, cancelled.reason) == (OrderStatus.CANCELLED, state.reason)


async def test_rejected_and_shipped_orders_cannot_be_cancelled(shop: OrderShop) -> None:
    await shop.place(order_command("key-1"))
    await shop.end_saga("order-1", Outcome.REJECTED, "card declined")
    await shop.place(order_command("key-2"))
    await shop.end_saga("order-2", Outcome.CONFIRMED)
    await shop.deliver(dispatched("order-2"))

    for order_id in ("order-1", "order-2"):
        with pytest.raises(FailedPrecondition):
            await shop.cancel(order_id)
    assert shop.fulfillment.calls == []


async def test_cancelling_a_cancelled_order_answers_it_as_it_is(shop: OrderShop) -> None:
    await shop.place()
    await shop.cancel("order-1", "changed my mind")
    await shop.end_saga("order-1", Outcome.CANCELLED, "changed my mind")
    writes = shop.uow.writes

    view = await shop.cancel("order-1", "again")

    assert (view.status, view.reason) == (OrderStatus.CANCELLED, "changed my mind")
    assert shop.uow.writes == writes + 1  # the cancel's transaction, which changed nothing
    assert shop.uow.state.sagas["order-1"]["cancel_reason"] == "changed my mind"


async def test_cancel_waits_for_the_saga_to_end_the_order() -> None:
    with open_shop(cancel_wait=30.0) as shop:
        await shop.place()
        ended: list[asyncio.Task[None]] = []

        def compensate(order_id: str) -> None:  # the woken saga, on the runner's task
            ended.append(asyncio.ensure_future(shop.end_saga(order_id, Outcome.CANCELLED, "no")))

        shop.runner.on_poke = compensate
        async with asyncio.timeout(5):  # the commit wakes the cancel, long before cancel_wait
            view = await shop.cancel("order-1", "no")
            await ended[0]
    assert (view.status, view.reason) == (OrderStatus.CANCELLED, "no")


async def test_other_users_orders_are_not_found_but_admins_see_them(shop: OrderShop) -> None:
    view = await shop.place()
    auth.set_caller(BOB)
    with pytest.raises(NotFound):
        await shop.get("order-1")
    with pytest.raises(NotFound):
        await shop.cancel("order-1")
    with pytest.raises(NotFound):
        await anext(shop.watch("order-1"))
    assert await shop.list(10) == ([], "")
    assert shop.uow.state.sagas["order-1"]["cancel_reason"] is None
    assert shop.runner.poked == []

    auth.set_caller(ADMIN)
    assert await shop.get("order-1") == view
    with pytest.raises(NotFound):
        await shop.get("order-9")
