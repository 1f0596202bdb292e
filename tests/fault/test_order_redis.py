"""Redis away or restarted under orders, on the real mesh: the outboxes hold every event.

The saga talks gRPC, so orders are still taken and confirmed while Redis is down; only
shipping waits, because it is choreographed over the bus. Once Redis is back (same port,
same AOF directory) every service's relay drains its outbox and the orders ship. Each
test checks that no event is lost (every outbox row published and on its stream) and
that none has two effects (one shipment per order, no dead letters).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from emporium.order.v1 import order_service_pb2 as order_pb

from tests.support.mesh import PUBLISHERS, Mesh, Shop, eventually, running_mesh

pytestmark = pytest.mark.slow

PORT_BASE = 24200
OUTAGE_SECONDS = 20.0
PENDING, CONFIRMED = order_pb.ORDER_STATUS_PENDING, order_pb.ORDER_STATUS_CONFIRMED
SHIPPED = order_pb.ORDER_STATUS_SHIPPED


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("redis-faults"), PORT_BASE) as running:
        yield running


@pytest.fixture(scope="module")
async def shop(mesh: Mesh) -> AsyncIterator[Shop]:
    client = await Shop(mesh).open()
    yield client
    await client.close()


@pytest.fixture
def redis_back(mesh: Mesh) -> Iterator[None]:
    """Whatever a test does to Redis, the next one finds it running."""
    yield
    mesh.redis.start()


async def _every_outbox_drained(mesh: Mesh) -> None:
    async def drained() -> bool:
        return not any(mesh.unpublished().values())

    await eventually(drained, 30, "every outbox row is published", every=0.2)


def _assert_no_event_lost_or_doubled(mesh: Mesh, order_ids: list[str]) -> None:
    for context in PUBLISHERS:
        missing = mesh.outbox_event_ids(context) - mesh.stream_event_ids(context)
        assert not missing, f"{context}: {len(missing)} published events not on the stream"
    shipments = mesh.rows("fulfillment", "SELECT order_id, count(*) FROM shipments GROUP BY 1")
    per_order = dict(shipments)
    assert {order_id: per_order.get(order_id) for order_id in order_ids} == dict.fromkeys(
        order_ids, 1
    )
    assert mesh.dead_letters("fulfillment") == mesh.dead_letters("order") == 0


@pytest.mark.usefixtures("redis_back")
async def test_orders_are_taken_while_redis_is_down_and_ship_once_it_is_back(
    mesh: Mesh, shop: Shop
) -> None:
    kettle = await shop.new_product(price_minor=3490, stock=100)
    warmup = await shop.place([(kettle, 1)])
    await shop.until([warmup.order_id], {SHIPPED}, timeout=30)

    mesh.redis.kill()
    down_at = time.monotonic()
    placed = []
    for _ in range(8):
        placed.append(await shop.place([(kettle, 1)]))
        await asyncio.sleep(0.1)
    order_ids = [order.order_id for order in placed]

    assert all(order.status == PENDING for order in placed)
    await shop.until(order_ids, {CONFIRMED}, timeout=15)  # the saga needs no bus
    backlog = mesh.unpublished()
    # OrderPlaced and OrderConfirmed; authorized and captured; reserved and committed.
    assert backlog["order"] >= 2 * len(placed)
    assert backlog["payment"] >= 2 * len(placed)
    assert backlog["inventory"] >= 2 * len(placed)
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    still = [(await shop.order(order_id)).status for order_id in order_ids]
    assert still == [CONFIRMED] * len(placed)  # shipping is choreographed over the bus

    mesh.redis.start()
    await shop.until(order_ids, {SHIPPED}, timeout=30)
    await _every_outbox_drained(mesh)

    assert time.monotonic() - down_at >= OUTAGE_SECONDS
    _assert_no_event_lost_or_doubled(mesh, [warmup.order_id, *order_ids])


@pytest.mark.usefixtures("redis_back")
async def test_a_redis_restart_under_a_stream_of_orders_loses_no_order_and_no_event(
    mesh: Mesh, shop: Shop
) -> None:
    mug = await shop.new_product(price_minor=1450, stock=100)
    placed: list[order_pb.Order] = []

    async def stream_of_orders() -> None:
        for _ in range(30):
            placed.append(await shop.place([(mug, 1)]))
            await asyncio.sleep(0.05)

    producing = asyncio.create_task(stream_of_orders())
    try:

        async def under_way() -> bool:
            return len(placed) >= 10

        await eventually(under_way, 30, "ten orders placed")
        crashed = mesh.redis.pid
        mesh.redis.kill()  # SIGKILL: a crash; the AOF keeps what Redis acknowledged
        await asyncio.sleep(0.5)
        mesh.redis.start()
    finally:
        await producing
    order_ids = [order.order_id for order in placed]
    await shop.until(order_ids, {SHIPPED}, timeout=40)
    await _every_outbox_drained(mesh)

    assert mesh.redis.pid != crashed
    assert len(set(order_ids)) == 30
    _assert_no_event_lost_or_doubled(mesh, order_ids)
