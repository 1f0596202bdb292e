"""Short restarts of each dependency under steady orders: no good order is turned away.

Orders arrive at about 8 per second. In a seeded order, inventory, payment, catalog,
identity, Redis and fulfillment are each stopped (kill -9, or SIGTERM) for 1-3 s and
started again, one at a time. A pod restart like that must never cost a customer an order:
every order with an approved card ends SHIPPED (stock is plentiful), every declined one
REJECTED, and money and stock are accounted for (:mod:`tests.fault.invariants`). PlaceOrder
itself may answer UNAVAILABLE while catalog is away; the client retries it with the same
idempotency key, as a client should.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet, read_rows
from tests.support.mesh import Mesh, Shop, running_mesh
from tests.support.workload import APPROVED, Books, Placement

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

PORT_BASE = 22400
PER_SECOND = 8.0
PRODUCTS, STOCK = 6, 10_000  # never out of stock: a rejection can only be the card's
DEPENDENCIES = ("inventory", "payment", "catalog", "identity", "redis", "fulfillment")
BUDGET_SECONDS = 30.0
SETTLE_SECONDS = BUDGET_SECONDS + 40.0
REASONS = "SELECT order_id, reason FROM order_views"


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp / "mesh", PORT_BASE) as running:
        yield running


async def _outage(mesh: Mesh, name: str, rng: random.Random, log: list[str]) -> None:
    """Stops ``name`` for 1-3 s (kill -9 or SIGTERM), starts it, waits until it serves."""
    down = rng.uniform(1.0, 3.0)
    began = time.monotonic()
    if name == "redis":
        mesh.redis.stop()
        await asyncio.sleep(down)
        mesh.redis.start()
    else:
        how = rng.choice(["kill -9", "SIGTERM"])
        process = mesh.children[name].process
        if how == "kill -9":
            mesh.kill(name)
        else:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)
        await asyncio.sleep(down)
        await mesh.restart(name)
    log.append(f"{name} down {down:.1f}s, back after {time.monotonic() - began:.1f}s")


async def test_short_restarts_of_every_dependency_reject_no_good_order(
    mesh: Mesh, seed: int
) -> None:
    rng = random.Random(seed)
    shop = await Shop(mesh).open()
    fleet = Fleet(mesh, ["order"], rng)
    try:
        books = Books()
        products = [
            await shop.new_product(price_minor=rng.randrange(300, 9000), stock=STOCK)
            for _ in range(PRODUCTS)
        ]
        books.stock = {p.sku: STOCK for p in products}
        customers = [await shop.new_customer() for _ in range(3)]
        placement = Placement(fleet, customers, books, rng)
        stop, log = asyncio.Event(), list[str]()
        arrivals = asyncio.create_task(placement.stream(products, 10_000, PER_SECOND, stop))
        try:
            await asyncio.sleep(2.0)  # orders flowing before the first outage
            for name in rng.sample(DEPENDENCIES, len(DEPENDENCIES)):
                await _outage(mesh, name, rng, log)
                await asyncio.sleep(rng.uniform(1.0, 3.0))
        finally:
            stop.set()
            order_ids = await arrivals
        seen = await invariants.settle(mesh, order_ids, SETTLE_SECONDS)
        print(f"outages: {log}; {len(order_ids)} orders: {Counter(seen.values())}")
        turned_away = [
            (order_id, status)
            for order_id, status in seen.items()
            if placement.cards[order_id] in APPROVED and status != "SHIPPED"
        ]
        if turned_away:
            reasons = dict(await read_rows(invariants.url(mesh, "order"), REASONS))
            examples = [(o, s, reasons.get(o)) for o, s in turned_away[:5]]
        assert not turned_away, (
            f"seed {seed}: {len(turned_away)} orders with an approved card and stock did not "
            f"ship; outages: {log}; e.g. {examples}"
        )
        declined = [o for o, s in seen.items() if placement.cards[o] not in APPROVED]
        assert all(seen[o] == "REJECTED" for o in declined), seed
        await invariants.assert_hold(mesh, books, seed)
    finally:
        await fleet.close()
        await shop.close()
