"""Several order processes on one database under random kills, stops and a freezing payment.

Three order processes share one PostgreSQL database, or two share one SQLite file (the
canary's set-up). 200 orders with mixed sandbox cards arrive at a steady rate, each at a
random replica, while a seeded chaos monkey kill -9s, SIGTERMs and restarts replicas (one
down at a time, so the shop stays open) and freezes payment (SIGSTOP) for a few seconds.
Then every process is back, and within one lease period plus the saga's retry budget
every order must have ended, with money and stock exactly accounted for
(:mod:`tests.fault.invariants`).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.fault import invariants
from tests.support.cluster import Fleet, add_replicas, read_rows
from tests.support.databases import fresh_database
from tests.support.mesh import Mesh, Shop, running_mesh
from tests.support.workload import Books, Placement

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

PORT_BASE = 22300
ORDERS = 200
PER_SECOND = 8.0
PRODUCTS, STOCK = 8, 70  # ~400 units asked for of 560: most orders find stock, some do not
LEASE_SECONDS = 5.0
BUDGET_SECONDS = 30.0
#: The whole mesh may need this long to notice and finish (two shared cores, slack included).
SETTLE_SECONDS = LEASE_SECONDS + BUDGET_SECONDS + 25.0
REASONS = "SELECT order_id, reason FROM order_views"
ENV = {
    "EMPORIUM_SAGA_LEASE_SECONDS": str(LEASE_SECONDS),
    "EMPORIUM_SAGA_RETRY_BUDGET_SECONDS": str(BUDGET_SECONDS),
}


@dataclass
class Replicated:
    mesh: Mesh
    orders: list[str]  # the order processes' names


@pytest.fixture(
    params=[("sqlite", 1), ("sqlite", 2), ("postgres", 3)],
    ids=["sqlite-1", "sqlite-2", "postgres-3"],
)
async def replicated(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[Replicated]:
    backend, count = request.param
    async with fresh_database(backend, tmp, "order") as url:
        databases = {"order": url} if backend == "postgres" else {}
        async with running_mesh(tmp / "mesh", PORT_BASE, ENV, databases) as mesh:
            names = ["order", *add_replicas(mesh, "order", count - 1)]
            await mesh.serving(names)
            yield Replicated(mesh, names)


class Monkey:
    """Seeded faults: order processes kill -9ed, SIGTERMed and restarted (one at a time),
    and, independently, payment frozen for up to 7 s (past the saga's 5 s call deadline)."""

    def __init__(self, mesh: Mesh, orders: list[str], rng: random.Random) -> None:
        self.mesh, self.orders, self.rng = mesh, orders, rng
        self.log: list[str] = []
        self.process_faults = 0

    async def run(self, stop: asyncio.Event, at_least: int) -> None:
        """Until ``stop`` is set and at least ``at_least`` process faults have happened."""

        async def processes() -> None:
            while not stop.is_set() or self.process_faults < at_least:
                action = self.rng.choice([self.kill, self.kill, self.term])
                await action(self.rng.choice(self.orders))
                self.process_faults += 1
                await asyncio.sleep(self.rng.uniform(0.0, 2.0))

        async def payment() -> None:
            while not stop.is_set() or self.process_faults < at_least:
                await asyncio.sleep(self.rng.uniform(0.5, 4.0))
                await self.freeze(self.rng.uniform(1.0, 7.0))

        await asyncio.gather(processes(), payment())

    async def kill(self, name: str) -> None:
        began = time.monotonic()
        self.mesh.kill(name)
        await asyncio.sleep(self.rng.uniform(0.2, 3.0))
        await self.mesh.restart(name)
        self.log.append(f"kill -9 {name} ({time.monotonic() - began:.1f}s)")

    async def term(self, name: str) -> None:
        began = time.monotonic()
        process = self.mesh.children[name].process
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            self.log.append(f"{name} did not stop within 30 s of SIGTERM")
            self.mesh.kill(name)
        await self.mesh.restart(name)
        self.log.append(f"SIGTERM {name} ({time.monotonic() - began:.1f}s)")

    async def freeze(self, seconds: float) -> None:
        self.mesh.freeze("payment")
        try:
            await asyncio.sleep(seconds)
        finally:
            self.mesh.thaw("payment")
        self.log.append(f"payment frozen {seconds:.1f}s")


async def test_replicas_under_kills_stops_and_a_frozen_payment_keep_money_and_stock_exact(
    replicated: Replicated, seed: int
) -> None:
    mesh, rng = replicated.mesh, random.Random(seed)
    shop = await Shop(mesh).open()
    fleet = Fleet(mesh, replicated.orders, rng)
    try:
        books = Books()
        products = [
            await shop.new_product(price_minor=rng.randrange(300, 9000), stock=STOCK)
            for _ in range(PRODUCTS)
        ]
        books.stock = {p.sku: STOCK for p in products}
        customers = [await shop.new_customer() for _ in range(4)]
        placement = Placement(fleet, customers, books, rng)
        monkey, stop = Monkey(mesh, replicated.orders, random.Random(rng.random())), asyncio.Event()
        chaos = asyncio.create_task(monkey.run(stop, at_least=2 * len(replicated.orders)))
        try:
            order_ids = await placement.stream(products, ORDERS, PER_SECOND)
        except grpc.aio.AioRpcError as failed:
            raise AssertionError(f"seed {seed}: no replica took an order; {monkey.log}") from failed
        finally:
            stop.set()
            await chaos
        calm = time.monotonic()
        seen = await invariants.settle(mesh, order_ids, SETTLE_SECONDS)
        took = time.monotonic() - calm
        print(f"faults: {monkey.log}; ended after {took:.1f}s: {Counter(seen.values())}")
        reasons = dict(await read_rows(invariants.url(mesh, "order"), REASONS))
        print(
            "rejected:",
            Counter(reasons[o].split(":")[0] for o, s in seen.items() if s == "REJECTED"),
        )
        late = {o: s for o, s in seen.items() if s not in invariants.FINAL}
        assert not late, (
            f"seed {seed}: {len(late)} orders not ended {took:.0f}s after the chaos; "
            f"faults: {monkey.log}; e.g. {list(late.items())[:5]}"
        )
        await invariants.assert_hold(mesh, books, seed)
    finally:
        await fleet.close()
        await shop.close()
