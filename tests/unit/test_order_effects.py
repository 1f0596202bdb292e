"""What order's saga store and shipment recorder write, on the fake unit of work (no I/O),
and the transaction rules of that fake itself."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from emporium.order.v1 import events_pb2 as order_events

from services.order.domain import (
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    OrderStatus,
    price_lines,
)
from services.order.ports import DuplicateRequest, LeaseLost
from services.order.saga import CancelRequested, Outcome, Step
from services.order.saga_store import Lease, SqlSagaStore
from services.platform.errors import Conflict, FailedPrecondition
from tests.support.fakes.order import FakeOrderUnitOfWork
from tests.support.order_shop import (
    ADDRESS,
    CARD,
    LEASE,
    NOW,
    TEA,
    OrderShop,
    dispatched,
    open_shop,
    order_command,
)

OTHER = Lease("instance-b", 10.0)


@pytest.fixture
def shop() -> Iterator[OrderShop]:
    with open_shop() as opened:
        yield opened


def event_types(shop: OrderShop, order_id: str = "order-1") -> list[type]:
    return [type(event) for event in shop.uow.state.events(order_id)]


# -- ShipmentRecorder ------------------------------------------------------------------------


async def test_a_shipment_of_a_pending_order_is_refused_until_the_order_is_confirmed(
    shop: OrderShop,
) -> None:
    await shop.place()
    for order_id in ("order-1", "order-9"):
        with pytest.raises(FailedPrecondition):
            await shop.deliver(dispatched(order_id))
    assert event_types(shop) == [OrderPlaced]

    await shop.end_saga("order-1", Outcome.CONFIRMED)
    await shop.deliver(dispatched("order-1"))  # the consumer's retry
    assert event_types(shop) == [OrderPlaced, OrderConfirmed, OrderShipped]


async def test_a_confirmed_order_is_shipped_once_and_a_redelivery_changes_nothing(
    shop: OrderShop, caplog: pytest.LogCaptureFixture
) -> None:
    await shop.place()
    await shop.end_saga("order-1", Outcome.CONFIRMED)
    shop.now += 100
    envelope = dispatched("order-1", "ship-7", at_us=NOW + 50)
    await shop.deliver(envelope)
    await shop.deliver(envelope)
    await shop.deliver(dispatched("order-1", "ship-7", at_us=NOW + 50))  # published again
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # nothing amiss

    *_, shipped = shop.uow.state.events("order-1")
    assert shipped == OrderShipped("order-1", "ship-7", "Test Carrier", "T-1", NOW + 50)
    assert event_types(shop) == [OrderPlaced, OrderConfirmed, OrderShipped]
    view = await shop.get("order-1")
    assert (view.status, view.shipment_id, view.version) == (OrderStatus.SHIPPED, "ship-7", 3)
    assert shop.uow.outbox.event_types() == ["OrderPlaced", "OrderConfirmed", "OrderShipped"]
    published = order_events.OrderShipped.FromString(shop.uow.outbox.committed[-1].payload)
    assert (published.order_id, published.tracking_number) == ("order-1", "T-1")


async def test_a_shipment_without_a_dispatch_time_is_dated_when_recorded(shop: OrderShop) -> None:
    await shop.place()
    await shop.end_saga("order-1", Outcome.CONFIRMED)
    shop.now += 100
    await shop.deliver(dispatched("order-1"))
    assert (await shop.get("order-1")).updated_at_us == NOW + 100


async def test_a_shipment_of_an_order_being_cancelled_is_not_recorded(
    shop: OrderShop, caplog: pytest.LogCaptureFixture
) -> None:
    await shop.place()
    await shop.end_saga("order-1", Outcome.CONFIRMED)
    await shop.cancel("order-1")  # fulfillment agreed: the saga compensates
    await shop.deliver(dispatched("order-1"))  # handled (not retried) but not recorded
    assert event_types(shop) == [OrderPlaced, OrderConfirmed]
    assert [r.levelno for r in caplog.records if r.name == "emporium.order"] == [logging.WARNING]


# -- SqlSagaStore ----------------------------------------------------------------------------


async def test_a_saga_loads_only_while_it_runs_held_here(shop: OrderShop) -> None:
    await shop.place(order_command("key-1", ("p-tea", 3)))
    state = await shop.store.load("order-1")
    assert state is not None
    assert (state.lines, state.total, state.card) == ((("TEA-1", 3),), TEA.price.times(3), CARD)
    assert (state.step, state.version, state.started_at_us) == (Step.RESERVE, 0, NOW)
    assert await SqlSagaStore(shop.uow, shop.clock, OTHER).load("order-1") is None
    assert await shop.store.load("order-9") is None
    await shop.end_saga("order-1", Outcome.REJECTED, "out of stock")
    assert await shop.store.load("order-1") is None


async def test_a_save_moves_the_version_on_and_reports_a_cancel_request(shop: OrderShop) -> None:
    await shop.place()
    state = await shop.store.load("order-1")
    assert state is not None
    saved = await shop.store.save(replace(state, step=Step.AUTHORIZE, attempts=2))
    assert (saved.version, saved.cancel_reason) == (1, None)
    await shop.cancel("order-1", "changed my mind")
    again = await shop.store.save(replace(saved, step=Step.COMPLETE, attempts=0))
    assert (again.version, again.cancel_reason) == (2, "changed my mind")
    assert await shop.store.load("order-1") == again


async def test_a_save_of_a_stale_version_is_lease_lost_and_writes_nothing(shop: OrderShop) -> None:
    await shop.place()
    state = await shop.store.load("order-1")
    assert state is not None
    await shop.store.save(replace(state, step=Step.AUTHORIZE))
    with pytest.raises(LeaseLost):
        await shop.store.save(replace(state, step=Step.COMPLETE))
    row = shop.uow.state.sagas["order-1"]
    assert (row["step"], row["version"]) == (Step.AUTHORIZE.value, 1)


async def test_an_adopted_saga_fences_off_its_previous_holder(shop: OrderShop) -> None:
    await shop.place()
    state = await shop.store.load("order-1")
    assert state is not None
    other = SqlSagaStore(shop.uow, shop.clock, OTHER)
    assert await other.adopt(10) == []  # the lease is still good
    shop.now = LEASE.expiry(NOW) + 1
    assert await other.adopt(10) == ["order-1"]

    with pytest.raises(LeaseLost):
        await shop.store.save(state)
    with pytest.raises(LeaseLost):
        await shop.store.finish(replace(state, outcome=Outcome.CONFIRMED))
    assert await shop.store.renew(["order-1"]) == set()
    assert event_types(shop) == [OrderPlaced]
    assert (await other.load("order-1")) == replace(state, version=1)


async def test_leases_are_renewed_in_bulk_and_released_for_others_to_adopt(
    shop: OrderShop,
) -> None:
    await shop.place(order_command("key-1"))
    shop.now += 1
    await shop.place(order_command("key-2"))
    assert await shop.store.running() == (2, NOW)
    shop.now += 5
    assert await shop.store.renew(["order-1", "order-2", "order-9"]) == {"order-1", "order-2"}
    assert shop.uow.state.sagas["order-2"]["lease_expires_us"] == LEASE.expiry(NOW + 6)

    await shop.store.release(["order-1"])
    other = SqlSagaStore(shop.uow, shop.clock, OTHER)
    assert await other.adopt(10) == ["order-1"]
    row = shop.uow.state.sagas["order-1"]
    assert (row["owner"], row["version"]) == (OTHER.owner, 2)  # released, then adopted


async def test_finishing_confirms_the_order_and_ends_the_saga_in_one_write(
    shop: OrderShop,
) -> None:
    command = order_command()
    await shop.place(command)
    writes = shop.uow.writes
    shop.now += 7
    await shop.end_saga("order-1", Outcome.CONFIRMED)

    assert shop.uow.writes == writes + 1
    lines, _ = price_lines(command.lines, {TEA.product_id: TEA})
    confirmed = OrderConfirmed("order-1", "pay-1", "alice", lines, ADDRESS, NOW + 7)
    assert shop.uow.state.events("order-1")[-1] == confirmed
    view = await shop.get("order-1")
    assert (view.status, view.payment_id, view.version) == (OrderStatus.CONFIRMED, "pay-1", 2)
    row = shop.uow.state.sagas["order-1"]
    assert (row["status"], row["step"], row["outcome"]) == ("ended", "done", "confirmed")
    assert (row["card_json"], row["owner"], row["lease_expires_us"]) == (None, None, None)
    assert shop.uow.outbox.event_types() == ["OrderPlaced", "OrderConfirmed"]
    assert await shop.store.running() == (0, None)


async def test_an_order_whose_cancel_was_requested_is_never_confirmed(shop: OrderShop) -> None:
    await shop.place()
    await shop.cancel("order-1", "changed my mind")
    with pytest.raises(CancelRequested) as raised:
        await shop.end_saga("order-1", Outcome.CONFIRMED)
    assert raised.value.reason == "changed my mind"
    assert event_types(shop) == [OrderPlaced]
    assert shop.uow.state.sagas["order-1"]["status"] == "running"

    await shop.end_saga("order-1", Outcome.CANCELLED, "changed my mind")
    *_, cancelled = shop.uow.state.events("order-1")
    assert cancelled == OrderCancelled("order-1", "changed my mind", NOW)


# -- the fake unit of work -------------------------------------------------------------------


def _placed(order_id: str) -> OrderPlaced:
    command = order_command()
    lines, total = price_lines(command.lines, {TEA.product_id: TEA})
    return Order.place(order_id, "alice", command, lines, total, NOW)


async def _cancel_twice(uow: FakeOrderUnitOfWork, order_id: str) -> None:
    """Two writers of one transaction append the same version."""
    async with uow.write() as tx:
        first, second = await tx.orders.load(order_id), await tx.orders.load(order_id)
        await tx.orders.append(first, first.cancel("one", NOW + 1))
        await tx.orders.append(second, second.cancel("two", NOW + 2))


async def test_a_taken_version_is_a_conflict_and_the_whole_write_is_discarded() -> None:
    committed: list[tuple[str, int, str]] = []
    uow = FakeOrderUnitOfWork(on_commit=lambda o, v, e: committed.append((o, v, type(e).__name__)))
    async with uow.write() as tx:
        await tx.orders.append(Order("o-1"), _placed("o-1"))
    with pytest.raises(Conflict):
        await _cancel_twice(uow, "o-1")

    assert [type(event) for event in uow.state.events("o-1")] == [OrderPlaced]
    async with uow.read() as tx:
        view = await tx.views.get("o-1")
    assert view is not None
    assert (view.status, view.version) == (OrderStatus.PENDING, 1)
    assert uow.outbox.event_types() == ["OrderPlaced"]
    # After the commit only, never for the discarded write.
    assert committed == [("o-1", 1, "OrderPlaced")]


async def test_a_read_transaction_refuses_every_write() -> None:
    uow = FakeOrderUnitOfWork()
    async with uow.read() as tx:
        with pytest.raises(AssertionError):
            await tx.orders.append(Order("o-1"), _placed("o-1"))
        with pytest.raises(AssertionError):
            await tx.requests.add("alice", "key-1", "hash", "o-1", NOW)
        with pytest.raises(AssertionError):
            await tx.sagas.create("o-1", CARD, NOW, LEASE.owner, LEASE.expiry(NOW))
    assert (uow.state.streams, uow.state.views, uow.state.sagas) == ({}, {}, {})
    assert uow.state.requests == {}


async def test_a_taken_idempotency_key_is_a_duplicate_request() -> None:
    uow = FakeOrderUnitOfWork()
    async with uow.write() as tx:
        await tx.requests.add("alice", "key-1", "hash", "o-1", NOW)
    with pytest.raises(DuplicateRequest):
        async with uow.write() as tx:
            await tx.requests.add("alice", "key-1", "other", "o-2", NOW)
    assert uow.state.requests == {("alice", "key-1"): ("hash", "o-1")}
