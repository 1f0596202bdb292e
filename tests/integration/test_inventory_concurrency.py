"""Inventory under concurrent calls: stock is never oversold nor negative, on SQLite and
PostgreSQL (READ COMMITTED)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from emporium.inventory.v1 import inventory_service_pb2 as pb

from tests.conftest import Tokens
from tests.integration.test_inventory_service import (
    COMMITTED,
    FAILED,
    RELEASED,
    RESERVED,
    Inventory,
    lines,
    serve_inventory,
    unique,
)
from tests.support import servers


@pytest.fixture
async def inventory(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> AsyncIterator[Inventory]:
    async with serve_inventory(backend, tmp, identity_server.target, tokens) as running:
        yield running


class StockWatcher:
    """Reads a SKU's stock over and over while other calls run, keeping what it saw."""

    def __init__(self, inventory: Inventory, sku: str) -> None:
        self._inventory = inventory
        self._sku = sku
        self._done = asyncio.Event()
        self.seen: list[tuple[int, int, int]] = []
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self._done.is_set() and len(self.seen) < 1000:
            self.seen.append(await self._inventory.stock(self._sku))
            await asyncio.sleep(0)

    async def stop(self) -> list[tuple[int, int, int]]:
        self._done.set()
        await self._task
        return self.seen


async def test_fifty_concurrent_reservations_of_ten_units_hold_exactly_ten(
    inventory: Inventory,
) -> None:
    sku = unique("console")
    await inventory.restock(sku, 10)
    order_ids = [unique(f"order-{i}") for i in range(50)]

    watcher = StockWatcher(inventory, sku)
    outcomes = await asyncio.gather(
        *(inventory.reserve(order_id, lines(**{sku: 1})) for order_id in order_ids)
    )
    seen = await watcher.stop()

    statuses = [reservation.status for reservation in outcomes]
    assert statuses.count(RESERVED) == 10
    assert statuses.count(FAILED) == 40
    assert all(list(r.unavailable_skus) == [sku] for r in outcomes if r.status == FAILED)
    assert await inventory.stock(sku) == (0, 10, 0)
    assert seen, "the watcher read the stock at least once"
    for available, reserved, sold in seen:
        assert available >= 0
        assert reserved >= 0
        assert available + reserved + sold == 10

    # Replaying every order, all at once, returns the same reservations and holds nothing more.
    replays = await asyncio.gather(
        *(inventory.reserve(order_id, lines(**{sku: 1})) for order_id in order_ids)
    )
    assert replays == outcomes
    assert await inventory.stock(sku) == (0, 10, 0)
    published = [await inventory.events(order_id) for order_id in order_ids]
    assert [len(events) for events in published] == [1] * 50
    # A failed reservation's event was recorded as if reserved, then withdrawn for its own.
    kinds = sorted(type(events[0]).__name__ for events in published)
    assert kinds == ["StockReservationFailed"] * 40 + ["StockReserved"] * 10


async def test_concurrent_replays_of_one_order_reserve_its_stock_once(
    inventory: Inventory,
) -> None:
    sku, order_id = unique("camera"), unique("order")
    await inventory.restock(sku, 10)
    outcomes = await asyncio.gather(
        *(inventory.reserve(order_id, lines(**{sku: 3})) for _ in range(20))
    )
    assert {r.reservation_id for r in outcomes} == {outcomes[0].reservation_id}
    assert {r.status for r in outcomes} == {RESERVED}
    assert await inventory.stock(sku) == (7, 3, 0)
    assert len(await inventory.events(order_id)) == 1


async def test_concurrent_multi_line_reservations_neither_deadlock_nor_split(
    inventory: Inventory,
) -> None:
    left, right = unique("left"), unique("right")
    await inventory.restock(left, 30)
    await inventory.restock(right, 30)
    # Half the orders list the SKUs one way round, half the other: rows are still locked
    # in one order, so PostgreSQL finds no deadlock.
    requests = [lines(**({left: 1, right: 1} if i % 2 else {right: 1, left: 1})) for i in range(40)]
    outcomes = await asyncio.gather(
        *(inventory.reserve(unique("order"), request) for request in requests)
    )
    statuses = [r.status for r in outcomes]
    assert statuses.count(RESERVED) == 30
    assert statuses.count(FAILED) == 10
    assert await inventory.stock(left) == (0, 30, 0)
    assert await inventory.stock(right) == (0, 30, 0)


async def test_racing_release_and_commit_of_one_order_always_ends_released_with_every_unit_back(
    inventory: Inventory,
) -> None:
    sku = unique("guitar")
    await inventory.restock(sku, 20)
    order_ids = [unique("order") for _ in range(20)]
    for order_id in order_ids:
        await inventory.reserve(order_id, lines(**{sku: 1}))

    async def outcome(call: object) -> int | grpc.StatusCode:
        try:
            response = await call  # type: ignore[misc]
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
        return int(response.reservation.status)

    calls: list[object] = []
    for order_id in order_ids:
        calls.append(
            inventory.stub.CommitReservation(
                pb.CommitReservationRequest(order_id=order_id), metadata=inventory.order
            )
        )
        calls.append(
            inventory.stub.ReleaseReservation(
                pb.ReleaseReservationRequest(order_id=order_id), metadata=inventory.order
            )
        )
    results = await asyncio.gather(*(outcome(call) for call in calls))

    for commit, release in zip(results[::2], results[1::2], strict=True):
        # Commit first: the release restocks the sold unit. Release first: the commit
        # finds a released reservation it may not leave. Either way one outcome per unit.
        assert release == RELEASED
        assert commit in {COMMITTED, grpc.StatusCode.FAILED_PRECONDITION}
    assert await inventory.stock(sku) == (20, 0, 0)
