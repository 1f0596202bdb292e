"""Inventory's handlers on a fake unit of work: no database, no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.inventory.domain import (
    AdjustStock,
    CommitReservation,
    GetStock,
    Line,
    ReleaseReservation,
    ReserveStock,
    Status,
)
from services.inventory.handlers import Inventory
from services.platform import auth
from services.platform.errors import FailedPrecondition, NotFound, PermissionDenied
from tests.support.fakes import FakeUnitOfWork
from tests.support.fakes.inventory import FakeInventoryTx, InventoryState, fake_inventory_uow

ORDER = auth.Caller("service:order", "svc-order", frozenset({auth.SERVICE_ROLE}))
ADMIN = auth.Caller("admin:root", "root", frozenset({auth.ADMIN_ROLE}))
Uow = FakeUnitOfWork[InventoryState, FakeInventoryTx]


@pytest.fixture
def clock() -> list[int]:
    return [1_000_000_000]


@pytest.fixture
def uow() -> Uow:
    return fake_inventory_uow()


@pytest.fixture
def inventory(uow: Uow, clock: list[int]) -> Iterator[Inventory]:
    ids = iter(f"r{n}" for n in range(100))
    auth.set_caller(ORDER)
    yield Inventory(uow, clock=lambda: clock[0], new_id=lambda: next(ids))
    auth.set_caller(None)


async def _stock(inventory: Inventory, sku: str, units: int) -> None:
    auth.set_caller(ADMIN)
    try:
        await inventory.adjust(AdjustStock(sku, units, "restock"))
    finally:
        auth.set_caller(ORDER)


async def test_a_reservation_holds_every_line_and_records_stock_reserved(
    inventory: Inventory, uow: Uow
) -> None:
    await _stock(inventory, "tea", 5)
    await _stock(inventory, "mug", 2)
    reservation = await inventory.reserve(
        ReserveStock("o1", (Line("tea", 3), Line("mug", 2)), ttl_seconds=60)
    )
    assert reservation.status is Status.RESERVED
    assert (uow.state.stock["tea"].available, uow.state.stock["tea"].reserved) == (2, 3)
    assert uow.outbox.event_types()[-1] == "StockReserved"


async def test_a_short_line_holds_nothing_and_fails_the_reservation(
    inventory: Inventory, uow: Uow
) -> None:
    await _stock(inventory, "tea", 5)
    failed = await inventory.reserve(ReserveStock("o1", (Line("tea", 3), Line("mug", 1))))
    assert (failed.status, failed.unavailable_skus) == (Status.FAILED, ("mug",))
    assert uow.state.stock["tea"].available == 5
    assert uow.outbox.event_types()[-1] == "StockReservationFailed"


async def test_reserving_twice_for_an_order_is_a_replay(inventory: Inventory, uow: Uow) -> None:
    await _stock(inventory, "tea", 5)
    first = await inventory.reserve(ReserveStock("o1", (Line("tea", 2),)))
    again = await inventory.reserve(ReserveStock("o1", (Line("tea", 2),)))
    assert again == first
    assert uow.state.stock["tea"].available == 3
    with pytest.raises(FailedPrecondition):
        await inventory.reserve(ReserveStock("o1", (Line("tea", 1),)))


async def test_commit_sells_and_release_after_commit_restocks(
    inventory: Inventory, uow: Uow
) -> None:
    await _stock(inventory, "tea", 5)
    await inventory.reserve(ReserveStock("o1", (Line("tea", 2),)))
    committed = await inventory.commit(CommitReservation("o1"))
    assert committed.status is Status.COMMITTED
    assert uow.state.stock["tea"].sold == 2
    released = await inventory.release(ReleaseReservation("o1", "cancelled"))
    assert released is not None
    assert released.status is Status.RELEASED
    level = uow.state.stock["tea"]
    assert (level.available, level.reserved, level.sold) == (5, 0, 0)
    assert uow.outbox.event_types()[-2:] == ["StockCommitted", "StockReleased"]


async def test_releasing_an_unknown_order_is_not_an_error(inventory: Inventory) -> None:
    assert await inventory.release(ReleaseReservation("nobody", "")) is None


async def test_an_expired_reservation_cannot_be_committed_and_gives_stock_back(
    inventory: Inventory, uow: Uow, clock: list[int]
) -> None:
    await _stock(inventory, "tea", 5)
    await inventory.reserve(ReserveStock("o1", (Line("tea", 2),), ttl_seconds=10))
    clock[0] += 10_000_000
    with pytest.raises(FailedPrecondition):
        await inventory.commit(CommitReservation("o1"))
    assert uow.state.reservations["o1"].status is Status.EXPIRED
    assert uow.state.stock["tea"].available == 5


async def test_the_sweep_expires_only_what_is_due(
    inventory: Inventory, uow: Uow, clock: list[int]
) -> None:
    await _stock(inventory, "tea", 5)
    await inventory.reserve(ReserveStock("short", (Line("tea", 1),), ttl_seconds=10))
    await inventory.reserve(ReserveStock("long", (Line("tea", 1),), ttl_seconds=100))
    clock[0] += 20_000_000
    assert await inventory.expire_due() == 1
    assert uow.state.reservations["short"].status is Status.EXPIRED
    assert uow.state.reservations["long"].status is Status.RESERVED


async def test_adjusting_below_zero_fails_and_unknown_skus_are_not_found(
    inventory: Inventory,
) -> None:
    await _stock(inventory, "tea", 1)
    auth.set_caller(ADMIN)
    with pytest.raises(FailedPrecondition):
        await inventory.adjust(AdjustStock("tea", -2, "loss"))
    with pytest.raises(NotFound):
        await inventory.adjust(AdjustStock("ghost", -1, "loss"))
    with pytest.raises(NotFound):
        await inventory.get_stock(GetStock("ghost"))


async def test_only_the_order_service_reserves(inventory: Inventory) -> None:
    auth.set_caller(auth.Caller("user-1", "ada", frozenset({"customer"})))
    with pytest.raises(PermissionDenied):
        await inventory.reserve(ReserveStock("o1", (Line("tea", 1),)))
