"""Saga ownership: two order instances (two saga stores, each with its own engine, as two
processes have) on one SQLite file and on one PostgreSQL database. The clock is injected,
so a lease expires when the test says so, without sleeping."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import bindparam, select

from services.order.domain import Address, Card, Money, Order, OrderLine, PlaceOrder, RequestedLine
from services.order.main import MIGRATIONS
from services.order.ports import LeaseLost
from services.order.repository import SqlOrderTx, unit_of_work
from services.order.saga import Outcome, SagaState, Step
from services.order.saga_store import Lease, SqlSagaStore
from services.order.tables import sagas
from services.platform.db import Database, Transaction
from services.platform.uow import SqlUnitOfWork
from tests.support.databases import fresh_database

CARD = Card("4242424242424242", 12, 2030, "123", "Ada")
ADDRESS = Address("Ada", "1 Main St", "", "Springfield", "12345", "DE")
LEASE = 10.0
OWNER = select(sagas.c.owner, sagas.c.version, sagas.c.status).where(
    sagas.c.order_id == bindparam("o")
)


class Clock:
    def __init__(self) -> None:
        self.us = 1_700_000_000_000_000

    def __call__(self) -> int:
        return self.us

    def advance(self, seconds: float) -> None:
        self.us += int(seconds * 1_000_000)


@dataclass
class Instances:
    """Two order instances sharing one database, and the clock they both read."""

    clock: Clock
    a: SqlSagaStore
    b: SqlSagaStore
    db_a: Database
    db_b: Database

    async def place(self, store: SqlSagaStore) -> str:
        """A new order with its saga, held by ``store``'s instance."""
        order_id = f"o-{uuid.uuid4().hex[:12]}"
        command = PlaceOrder("k-" + order_id, (RequestedLine("p-1", 1),), CARD, ADDRESS)
        line = OrderLine("p-1", "SKU-1", "Thing", 1, Money(500, "EUR"))
        placed = Order.place(order_id, "u-1", command, (line,), Money(500, "EUR"), self.clock())
        db = self.db_a if store is self.a else self.db_b
        now, lease = self.clock(), store.lease
        async with unit_of_work(db).write() as tx:
            await tx.orders.append(Order(order_id), placed)
            await tx.sagas.create(order_id, CARD, now, lease.owner, lease.expiry(now))
        return order_id

    async def owner(self, order_id: str) -> tuple[Any, ...]:
        async with self.db_a.read() as tx:
            row = await tx.fetch_one(OWNER, {"o": order_id})
        assert row is not None
        return (row["owner"], row["version"], row["status"])


@pytest.fixture
async def instances(backend: str, tmp_path: Path) -> AsyncIterator[Instances]:
    async with fresh_database(backend, tmp_path, "order") as url:
        db_a, db_b = Database(url, MIGRATIONS), Database(url, MIGRATIONS)
        await db_a.migrate()
        clock = Clock()
        a = SqlSagaStore(unit_of_work(db_a), clock, Lease("instance-a", LEASE))
        b = SqlSagaStore(unit_of_work(db_b), clock, Lease("instance-b", LEASE))
        try:
            yield Instances(clock, a, b, db_a, db_b)
        finally:
            await db_a.dispose()
            await db_b.dispose()


async def test_only_the_holder_loads_a_saga(instances: Instances) -> None:
    order_id = await instances.place(instances.a)
    assert await instances.b.load(order_id) is None
    state = await instances.a.load(order_id)
    assert state is not None
    assert (state.step, state.version) == (Step.RESERVE, 0)


async def test_a_live_lease_is_never_adopted(instances: Instances) -> None:
    order_id = await instances.place(instances.a)
    instances.clock.advance(LEASE - 1)
    assert await instances.b.adopt(10) == []
    assert await instances.a.renew([order_id]) == {order_id}
    instances.clock.advance(LEASE - 1)  # past the first lease, within the renewed one
    assert await instances.b.adopt(10) == []
    assert await instances.owner(order_id) == ("instance-a", 0, "running")


async def test_an_expired_lease_is_adopted_and_the_stale_owner_cannot_write(
    instances: Instances,
) -> None:
    order_id = await instances.place(instances.a)
    stale = await instances.a.load(order_id)
    assert stale is not None
    instances.clock.advance(LEASE + 0.001)
    assert await instances.b.adopt(10) == [order_id]
    assert await instances.owner(order_id) == ("instance-b", 1, "running")

    with pytest.raises(LeaseLost):
        await instances.a.save(replace(stale, step=Step.AUTHORIZE))
    with pytest.raises(LeaseLost):
        await instances.a.finish(replace(stale, outcome=Outcome.REJECTED, reason="stale"))
    assert await instances.a.renew([order_id]) == set()  # and it learns so at renewal

    adopted = await instances.b.load(order_id)
    assert adopted is not None
    assert adopted.version == 1
    saved = await instances.b.save(replace(adopted, step=Step.AUTHORIZE))
    assert saved.version == 2
    await instances.b.finish(replace(saved, outcome=Outcome.REJECTED, reason="out of stock: X"))
    assert await instances.owner(order_id) == (None, 3, "ended")


async def test_a_save_with_an_old_version_fails_even_for_the_holder(
    instances: Instances,
) -> None:
    order_id = await instances.place(instances.a)
    first = await instances.a.load(order_id)
    assert first is not None
    await instances.a.save(replace(first, step=Step.AUTHORIZE))
    with pytest.raises(LeaseLost):  # a second run of the same saga, from the same state
        await instances.a.save(replace(first, step=Step.COMPENSATE))


async def test_leases_are_renewed_in_one_statement_for_all_held_sagas(
    instances: Instances,
) -> None:
    order_ids = [await instances.place(instances.a) for _ in range(5)]
    statements: list[object] = []

    class Counted:
        """A transaction that notes each statement run through it."""

        def __init__(self, tx: Transaction) -> None:
            self._tx = tx

        def __getattr__(self, name: str) -> Any:
            found = getattr(self._tx, name)
            if name not in ("execute", "execute_many", "fetch_one", "fetch_all", "scalar"):
                return found

            async def run(statement: object, *args: Any) -> Any:
                statements.append(statement)
                return await found(statement, *args)

            return run

    counted = SqlUnitOfWork(instances.db_a, lambda tx: SqlOrderTx(cast(Transaction, Counted(tx))))
    store = SqlSagaStore(counted, instances.clock, instances.a.lease)
    assert await store.renew(order_ids) == set(order_ids)
    assert len(statements) == 1
    instances.clock.advance(LEASE - 0.5)
    assert await instances.b.adopt(10) == []


async def test_released_leases_are_adopted_at_once(instances: Instances) -> None:
    order_ids = [await instances.place(instances.a) for _ in range(3)]
    await instances.a.release(order_ids)
    assert sorted(await instances.b.adopt(10)) == sorted(order_ids)
    for order_id in order_ids:
        owner, version, status = await instances.owner(order_id)
        assert (owner, status) == ("instance-b", "running")
        assert version == 2  # released (1), then adopted (2)


async def test_two_adopters_never_claim_the_same_saga(instances: Instances) -> None:
    order_ids = [await instances.place(instances.a) for _ in range(12)]
    instances.clock.advance(LEASE + 1)
    first, second = await asyncio.gather(instances.a.adopt(5), instances.b.adopt(20))
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(order_ids)
    assert len(first) <= 5


async def test_an_ended_saga_is_neither_adopted_nor_renewed(instances: Instances) -> None:
    order_id = await instances.place(instances.a)
    state = await instances.a.load(order_id)
    assert isinstance(state, SagaState)
    await instances.a.finish(replace(state, outcome=Outcome.REJECTED, reason="out of stock"))
    instances.clock.advance(LEASE * 3)
    assert await instances.b.adopt(10) == []
    assert await instances.a.renew([order_id]) == set()
