"""Database trouble under the bus's consumers: valid events wait, they never dead-letter.

On SQLite another process holds ``BEGIN EXCLUSIVE`` on fulfillment's file for 60 s while
confirmed orders reach fulfillment, and on order's file for 60 s while fulfillment's
``ShipmentDispatched`` events reach the order service. On PostgreSQL both services'
connections are killed by the server (``pg_terminate_backend``) again and again while
orders flow. Afterwards every confirmed order ships, money and stock are accounted for,
and neither consumer group has parked a single event in its dead-letter stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet
from tests.support.databases import fresh_database
from tests.support.dbfaults import SqliteLock, terminate_backends
from tests.support.mesh import Mesh, Product, Shop, running_mesh
from tests.support.workload import APPROVED, Books, Placement

pytestmark = pytest.mark.slow

PORT_BASE = 22800
LOCK_SECONDS = 60.0
GROUPS = ("order", "fulfillment")
CONFIRMED = frozenset({"CONFIRMED"})
#: A killed connection may surface to a client as any of these; replaying the key is safe.
REPLAYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def mesh(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[Mesh]:
    async with AsyncExitStack() as stack:
        databases = {}
        if request.param == "postgres":
            for name in ("order", "fulfillment"):
                databases[name] = await stack.enter_async_context(
                    fresh_database("postgres", tmp, name)
                )
        yield await stack.enter_async_context(
            running_mesh(tmp / "mesh", PORT_BASE, databases=databases)
        )


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def _shop(mesh: Mesh) -> tuple[Shop, Placement, Books, list[Product]]:
    shop = await Shop(mesh).open()
    product = await shop.new_product(price_minor=1990, stock=5000)
    books = Books(stock={product.sku: 5000})
    fleet = Fleet(mesh, ["order"], random.Random(5))
    placement = Placement(fleet, [shop.customer], books, random.Random(6), retry_on=REPLAYABLE)
    return shop, placement, books, [product]


async def _sqlite_locks(mesh: Mesh, placement: Placement, products: list[Product]) -> list[str]:
    fulfillment, order = (SqliteLock(mesh.data_dir / f"{n}.db") for n in ("fulfillment", "order"))
    await fulfillment.acquire()
    locked = time.monotonic()
    try:
        order_ids = [await placement.place([(products[0], 1)], APPROVED[0]) for _ in range(10)]
        seen = await invariants.settle(mesh, order_ids, 30, CONFIRMED)
        assert set(seen.values()) == {"CONFIRMED"}, seen  # fulfillment cannot write yet
        await order.acquire()  # before fulfillment can dispatch and tell the order service
        order_locked = time.monotonic()
        try:
            await _sleep_until(locked + LOCK_SECONDS)
            await fulfillment.release()
            await _sleep_until(order_locked + LOCK_SECONDS)
        finally:
            await order.release()
    finally:
        await fulfillment.release()
    return order_ids


async def _killed_connections(
    mesh: Mesh, placement: Placement, products: list[Product]
) -> list[str]:
    rng, stop = random.Random(8), asyncio.Event()
    urls = [invariants.url(mesh, name) for name in ("order", "fulfillment")]

    async def killer() -> None:
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            await terminate_backends(rng.choice(urls))

    killing = asyncio.create_task(killer())
    try:
        return await placement.stream(products, 120, 5.0)
    finally:
        stop.set()
        await killing


async def test_locked_or_killed_databases_delay_events_and_dead_letter_none(mesh: Mesh) -> None:
    shop, placement, books, products = await _shop(mesh)
    try:
        if mesh.env["order"]["DATABASE_URL"].startswith("sqlite"):
            order_ids = await _sqlite_locks(mesh, placement, products)
        else:
            order_ids = await _killed_connections(mesh, placement, products)
        seen = await invariants.settle(mesh, order_ids, 90)
        assert set(seen.values()) <= invariants.FINAL, seen
        dead = {group: mesh.dead_letters(group) for group in GROUPS}
        assert dead == dict.fromkeys(GROUPS, 0), f"valid events dead-lettered: {dead}"
        await invariants.assert_hold(mesh, books, seed=0)
    finally:
        await placement.fleet.close()
        await shop.close()
