"""A saga delayed past its reservation's lifetime never captures money it cannot ship.

Payment is frozen while an order's saga waits to authorize. Meanwhile its reservation
reaches the end of its lifetime: the test moves the reservation's expiry into the past in
inventory's database (the 15 minutes of the default lifetime, without waiting them) and
inventory's sweeper expires it, returning the units. Payment thaws. Whatever the saga then
does (reserve again, or give up and void), money may only be captured for stock that was
committed: a capture without a commit, refunded afterwards, is the bug this guards
against.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet, read_rows
from tests.support.mesh import Mesh, Shop, eventually, running_mesh
from tests.support.workload import Books, Placement

pytestmark = pytest.mark.slow

PORT_BASE = 22700
ENV = {"EMPORIUM_INVENTORY_SWEEP_INTERVAL_SECONDS": "0.5"}


@pytest.fixture
async def mesh(tmp: Path) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp / "mesh", PORT_BASE, ENV) as running:
        yield running


def _expire_now(mesh: Mesh, order_id: str) -> None:
    """The reservation's lifetime is over (a write into inventory's database: the fault)."""
    path = mesh.data_dir / "inventory.db"
    with closing(sqlite3.connect(path, timeout=10.0)) as connection, connection:
        connection.execute(
            "UPDATE reservations SET expires_at_us = 1 WHERE order_id = ? AND status = ?",
            (order_id, "RESERVED"),
        )


async def test_a_saga_delayed_past_its_reservation_ttl_captures_nothing_uncommitted(
    mesh: Mesh,
) -> None:
    shop = await Shop(mesh).open()
    fleet = Fleet(mesh, ["order"], random.Random(3))
    try:
        product = await shop.new_product(price_minor=3100, stock=10)
        books = Books(stock={product.sku: 10})
        placement = Placement(fleet, [shop.customer], books, random.Random(4))
        inventory_db = invariants.url(mesh, "inventory")
        mesh.freeze("payment")
        try:
            order_id = await placement.place([(product, 3)], "4242424242424242")

            async def reservation(status: str) -> bool:
                query = "SELECT status FROM reservations WHERE order_id = ?"
                return [(status,)] == await read_rows(inventory_db, query, [order_id])

            await eventually(lambda: reservation("RESERVED"), 30, "the stock is reserved")
            _expire_now(mesh, order_id)
            await eventually(lambda: reservation("EXPIRED"), 30, "the reservation expired")
        finally:
            mesh.thaw("payment")
        seen = await invariants.settle(mesh, [order_id], timeout=90)
        payments = await read_rows(
            invariants.url(mesh, "payment"),
            "SELECT status, captured_minor FROM payments WHERE order_id = ?",
            [order_id],
        )
        reservations = await read_rows(
            inventory_db, "SELECT status FROM reservations WHERE order_id = ?", [order_id]
        )
        captured = sum(minor for _, minor in payments)
        assert captured == 0 or ("COMMITTED",) in reservations, (seen, payments, reservations)
        await invariants.assert_hold(mesh, books, seed=0)
    finally:
        await fleet.close()
        await shop.close()
