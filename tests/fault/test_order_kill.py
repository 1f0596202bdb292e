"""Kill -9 the order service in the middle of its sagas, restart it: every saga ends.

Payment is frozen (SIGSTOP) while the orders are placed, so every saga is caught after
its stock is reserved and before its payment, which is the moment the issue names. The
kill then lands there for certain rather than by luck of timing. Payment thaws and the
order service restarts with the same environment. It must resume each saga from its
saved step and end it: stock accounted for, at most one capture per order.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from emporium.order.v1 import order_service_pb2 as order_pb

from tests.support.mesh import APPROVE, DECLINE, Mesh, Product, Shop, eventually, running_mesh

pytestmark = pytest.mark.slow

PORT_BASE = 24100
ORDERS = 20
STOCK = 40
CONFIRMED, SHIPPED = order_pb.ORDER_STATUS_CONFIRMED, order_pb.ORDER_STATUS_SHIPPED
REJECTED = order_pb.ORDER_STATUS_REJECTED


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    # While payment is frozen the sagas' authorize calls time out and are retried. On a
    # slow machine, freeze plus restart could outlast the default 30 s retry budget, and
    # the sagas would then rightly compensate. That is another test's subject: widen it.
    budget = {"EMPORIUM_SAGA_RETRY_BUDGET_SECONDS": "120"}
    async with running_mesh(tmp / "mesh", PORT_BASE, budget) as running:
        yield running


@pytest.fixture
async def shop(mesh: Mesh) -> AsyncIterator[Shop]:
    client = await Shop(mesh).open()
    yield client
    await client.close()


async def test_sagas_interrupted_by_a_kill_of_the_order_service_all_end_after_its_restart(
    mesh: Mesh, shop: Shop
) -> None:
    products = [await shop.new_product(price_minor=p, stock=STOCK) for p in (700, 1150, 3000)]
    # Order i buys 1-2 of one or two products; every fourth card is declined.
    baskets: list[list[tuple[Product, int]]] = [
        [(products[i % 3], 1 + i % 2)] + ([(products[(i + 1) % 3], 1)] if i % 2 else [])
        for i in range(ORDERS)
    ]
    held = Counter[str]()
    for basket in baskets:
        held.update({product.sku: quantity for product, quantity in basket})

    mesh.freeze("payment")
    try:
        placed = await asyncio.gather(
            *(
                shop.place(basket, DECLINE if i % 4 == 3 else APPROVE)
                for i, basket in enumerate(baskets)
            )
        )

        async def all_reserved() -> bool:
            return _running_steps(mesh) == {"authorize": ORDERS}

        await eventually(all_reserved, 30, "every saga has saved its reservation")
        levels = [await shop.stock(p.sku) for p in products]
        mesh.kill("order")
    finally:
        mesh.thaw("payment")

    assert {level.sku: level.reserved for level in levels} == held
    assert _running_steps(mesh) == {"authorize": ORDERS}  # still, after the kill

    await mesh.restart("order")
    restarted = time.monotonic()
    order_ids = [order.order_id for order in placed]
    ended = await shop.until(order_ids, {CONFIRMED, SHIPPED, REJECTED}, timeout=30)
    assert time.monotonic() - restarted < 30

    statuses = {order_id: order.status for order_id, order in ended.items()}
    rejected = [i for i, order in enumerate(placed) if statuses[order.order_id] == REJECTED]
    assert rejected == [i for i in range(ORDERS) if i % 4 == 3]  # exactly the declined cards
    sold = Counter[str]()
    for i, basket in enumerate(baskets):
        if i not in rejected:
            sold.update({product.sku: quantity for product, quantity in basket})
    for product in products:
        level = await shop.stock(product.sku)
        assert level.available + level.reserved + level.sold == STOCK, product.sku
        assert (level.reserved, level.sold) == (0, sold[product.sku]), product.sku

    payments = mesh.rows(
        "payment", "SELECT order_id, status, captured_minor, amount_minor FROM payments"
    )
    assert Counter(order_id for order_id, *_ in payments) == dict.fromkeys(order_ids, 1)
    for order_id, status, captured_minor, amount_minor in payments:
        order = ended[order_id]
        if order.status == REJECTED:
            assert status in ("DECLINED", "VOIDED"), (order_id, status)
            assert captured_minor == 0
        else:
            assert status == "CAPTURED", (order_id, status)
            assert captured_minor == amount_minor == order.total.amount_minor


def _running_steps(mesh: Mesh) -> Counter[str]:
    """How many of the order service's sagas are running, by their saved step."""
    rows = mesh.rows("order", "SELECT step FROM sagas WHERE status = 'running'")
    return Counter(step for (step,) in rows)
