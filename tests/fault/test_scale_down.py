"""A scale-down: one of two order processes stops for good while its sagas wait on payment.

Payment is frozen (SIGSTOP), orders are placed on the second order process only, and once
each of their sagas is waiting to authorize, that process gets SIGTERM and never comes
back. Payment thaws. The first process must adopt the stopped one's sagas within one lease
period and end every one of them, with money and stock accounted for.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet, add_replicas, read_rows
from tests.support.mesh import Mesh, Shop, eventually, running_mesh
from tests.support.workload import Books, Placement

pytestmark = pytest.mark.slow

PORT_BASE = 22500
#: One declined card among approved ones: both kinds of saga end must happen on adoption.
CARDS = ["4242424242424242", "5555555555554444", "4000000000000002"] * 2
LEASE_SECONDS = 5.0
DRAIN_SECONDS = 30.0  # what the stopping process may take (drain, release leases)
FINISH_SECONDS = 20.0  # an adopted saga's remaining steps, on two busy cores
ENV = {"EMPORIUM_SAGA_LEASE_SECONDS": str(LEASE_SECONDS)}


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp / "mesh", PORT_BASE, ENV) as running:
        await running.serving(add_replicas(running, "order", 1))
        yield running


async def _waiting_to_authorize(mesh: Mesh, order_ids: list[str]) -> bool:
    rows = await read_rows(
        invariants.url(mesh, "order"), "SELECT order_id, step, status FROM sagas"
    )
    steps = {order_id: (step, status) for order_id, step, status in rows}
    return all(steps.get(o) == ("authorize", "running") for o in order_ids)


async def test_a_stopped_replicas_sagas_are_adopted_and_end_within_one_lease(
    mesh: Mesh,
) -> None:
    rng = random.Random(7)
    shop = await Shop(mesh).open()
    fleet = Fleet(mesh, ["order-2"], rng)
    try:
        product = await shop.new_product(price_minor=1250, stock=50)
        books = Books(stock={product.sku: 50})
        placement = Placement(fleet, [shop.customer], books, rng)
        mesh.freeze("payment")
        try:
            order_ids = [
                await placement.place([(product, 1 + i % 2)], number)
                for i, number in enumerate(CARDS)
            ]

            async def waiting() -> bool:
                return await _waiting_to_authorize(mesh, order_ids)

            await eventually(waiting, 30, "every saga waits on the frozen payment")
            process = mesh.children["order-2"].process
            process.terminate()
            await asyncio.to_thread(process.wait, DRAIN_SECONDS)
        finally:
            mesh.thaw("payment")
        stopped = time.monotonic()
        seen = await invariants.settle(mesh, order_ids, LEASE_SECONDS + FINISH_SECONDS)
        took = time.monotonic() - stopped
        late = {o: s for o, s in seen.items() if s not in invariants.FINAL}
        assert not late, f"{len(late)} of {len(CARDS)} orders not ended {took:.0f}s later: {late}"
        await invariants.assert_hold(mesh, books, seed=7)
    finally:
        await fleet.close()
        await shop.close()
