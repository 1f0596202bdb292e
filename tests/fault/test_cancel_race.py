"""Cancelling a confirmed order while fulfillment is down: ship or cancel, never both.

Fulfillment is stopped, so confirmed orders wait to be dispatched. Each is cancelled, and
fulfillment starts again; half of them are cancelled once more at once, racing the
dispatch of the backlog. One authority decides: either the cancel won (the answer says
CANCELLED; the payment is refunded, the stock restocked, and fulfillment never dispatches
it), or shipping won (the answer is an error, or the order as still confirmed or shipped;
it ships and keeps its payment). Money and stock are accounted for either way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from emporium.order.v1 import order_service_pb2 as order_pb

from tests.fault import invariants
from tests.support.cluster import Fleet, read_rows
from tests.support.mesh import Mesh, Shop, running_mesh
from tests.support.workload import Books, Placement

pytestmark = pytest.mark.slow

PORT_BASE = 22600
ORDERS = 4
CONFIRMED = order_pb.ORDER_STATUS_CONFIRMED
CANCELLED_NAME = order_pb.OrderStatus.Name(order_pb.ORDER_STATUS_CANCELLED)


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp / "mesh", PORT_BASE) as running:
        yield running


async def test_a_cancel_racing_a_stopped_fulfillment_is_either_a_refund_or_a_shipment(
    mesh: Mesh,
) -> None:
    shop = await Shop(mesh).open()
    fleet = Fleet(mesh, ["order"], random.Random(1))
    try:
        product = await shop.new_product(price_minor=2400, stock=20)
        books = Books(stock={product.sku: 20})
        placement = Placement(fleet, [shop.customer], books, random.Random(2))
        mesh.kill("fulfillment")
        order_ids = [
            await placement.place([(product, 2)], "4242424242424242") for _ in range(ORDERS)
        ]
        await shop.until(order_ids, {CONFIRMED}, timeout=60)

        answers: dict[str, str] = {}

        async def cancel(order_id: str, until_decided: float = 0.0) -> None:
            """One CancelOrder; with ``until_decided``, again while it answers UNAVAILABLE
            (fulfillment unreachable, or the order service's breaker still open)."""
            deadline = time.monotonic() + until_decided
            while True:
                try:
                    answer = await fleet.cancel(order_id, shop.customer, "found it cheaper")
                    answers[order_id] = order_pb.OrderStatus.Name(answer.status)
                    return
                except grpc.aio.AioRpcError as refused:
                    answers[order_id] = refused.code().name
                    if refused.code() != grpc.StatusCode.UNAVAILABLE:
                        return
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.5)

        for order_id in order_ids:
            await cancel(order_id)
        await mesh.restart("fulfillment")
        # Half of them are cancelled again, racing fulfillment's backlog, until decided.
        await asyncio.gather(*(cancel(o, 45.0) for o in order_ids[::2]))
        print("answers:", answers)
        cancelled = [o for o, a in answers.items() if a == CANCELLED_NAME]
        shipping = [o for o in order_ids if o not in cancelled]
        seen = await invariants.settle(mesh, order_ids, timeout=60)
        # A later order ships only once fulfillment has worked through the backlog.
        probe = await placement.place([(product, 1)], "4242424242424242")
        assert (await invariants.settle(mesh, [probe], timeout=60))[probe] == "SHIPPED"
        seen = await invariants.statuses(mesh, order_ids)

        wrong = {o: (answers[o], seen[o]) for o in cancelled if seen[o] != "CANCELLED"}
        wrong |= {o: (answers[o], seen[o]) for o in shipping if seen[o] != "SHIPPED"}
        assert not wrong, f"the caller's answer and the outcome disagree: {wrong}"
        payments = dict(
            await read_rows(
                invariants.url(mesh, "payment"), "SELECT order_id, status FROM payments"
            )
        )
        assert all(payments[o] == "REFUNDED" for o in cancelled), payments
        await invariants.assert_hold(mesh, books, seed=0)
    finally:
        await fleet.close()
        await shop.close()
