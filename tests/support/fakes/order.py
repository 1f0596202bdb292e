"""A fake unit of work for the order service, with the rules of its SQL repositories.

The event store keeps each stream as the stored proto bytes and refuses a taken version
with ``Conflict``; the read model is kept by :func:`services.order.projector.changes`, as
the SQL projector keeps ``order_views``; idempotency keys raise ``DuplicateRequest``; saga
rows have the columns of ``sagas`` and the compare-and-set on (owner, version, running) of
:mod:`services.order.saga_rows`. ``write()`` runs the after-commit callbacks (``on_commit``
with the order's id, as :func:`services.order.repository.unit_of_work` does) once it has
committed; ``read()`` refuses every write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from services.order import codec
from services.order.domain import Card, Event, Order, OrderPlaced
from services.order.ports import DuplicateRequest, OnCommit
from services.order.projector import OrderView, changes
from services.order.saga import Outcome, SagaState, Step
from services.order.saga_rows import ENDED, RUNNING, Held, _progress, _started
from services.order.tables import sagas
from services.platform.db import IntegrityViolation, Row
from services.platform.errors import Conflict
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork

SagaRow = dict[str, Any]


@dataclass
class OrderState:
    #: Each order's stream as stored: (event type, proto bytes); version = position + 1.
    streams: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    #: ``order_views`` rows by order id.
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: PlaceOrder's keys: (user, key) → (request hash, order id).
    requests: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    #: ``sagas`` rows by order id.
    sagas: dict[str, SagaRow] = field(default_factory=dict)

    def events(self, order_id: str) -> list[Event]:
        return [codec.from_proto(t, payload) for t, payload in self.streams.get(order_id, [])]


class Scope:
    """One transaction: whether it may write, and what runs once it has committed."""

    def __init__(self) -> None:
        self.read_only = False
        self.after_commit: list[Callable[[], None]] = []

    def writing(self, what: str) -> None:
        if self.read_only:
            raise AssertionError(f"a read transaction {what}")


class FakeOrderEvents(FakeRepository[OrderState]):
    def __init__(
        self, state: OrderState, outbox: FakeOutbox, scope: Scope, on_commit: OnCommit | None
    ) -> None:
        super().__init__(state)
        self._outbox, self._scope, self._on_commit = outbox, scope, on_commit

    async def load(self, order_id: str) -> Order:
        return Order.replay(order_id, self._state.events(order_id))

    async def events_after(self, order_id: str, version: int) -> list[tuple[int, Event]]:
        events = enumerate(self._state.events(order_id), start=1)
        return [(v, event) for v, event in events if v > version]

    async def append(self, order: Order, new: Event) -> None:
        self._scope.writing("appended an event")
        version = order.version + 1
        proto = codec.to_proto(new)
        order.apply(new)
        stream = self._state.streams.setdefault(order.order_id, [])
        if version <= len(stream):  # the unique (order_id, version)
            raise Conflict(f"order {order.order_id} changed concurrently")
        assert version == len(stream) + 1, f"version {version} leaves a gap in the stream"
        stream.append((proto.DESCRIPTOR.full_name, proto.SerializeToString()))
        row = changes(new, version)
        if isinstance(new, OrderPlaced):
            assert order.order_id not in self._state.views, "a second view row (primary key)"
            self._state.views[order.order_id] = row
        elif order.order_id in self._state.views:  # an UPDATE of no row changes nothing
            self._state.views[order.order_id].update(row)
        await self._outbox.record(proto, order.order_id)
        if self._on_commit is not None:
            self._scope.after_commit.append(partial(self._on_commit, order.order_id, version, new))


class FakeOrderViews(FakeRepository[OrderState]):
    async def get(self, order_id: str) -> OrderView | None:
        row = self._state.views.get(order_id)
        return None if row is None else OrderView.from_row(row)

    async def page(
        self, user_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[OrderView]:
        mine = [row for row in self._state.views.values() if row["user_id"] == user_id]
        mine.sort(key=lambda row: (row["created_at_us"], row["order_id"]), reverse=True)
        if after is not None:
            mine = [row for row in mine if (row["created_at_us"], row["order_id"]) < after]
        return [OrderView.from_row(row) for row in mine[:limit]]

    async def versions(self, order_ids: Sequence[str]) -> dict[str, int]:
        views = self._state.views
        return {order_id: views[order_id]["version"] for order_id in order_ids if order_id in views}


class FakeOrderRequests(FakeRepository[OrderState]):
    def __init__(self, state: OrderState, scope: Scope) -> None:
        super().__init__(state)
        self._scope = scope

    async def find(self, user_id: str, key: str) -> tuple[str, str] | None:
        return self._state.requests.get((user_id, key))

    async def add(
        self, user_id: str, key: str, request_hash: str, order_id: str, now_us: int
    ) -> None:
        self._scope.writing("added an idempotency key")
        if (user_id, key) in self._state.requests:
            raise DuplicateRequest(key)
        self._state.requests[(user_id, key)] = (request_hash, order_id)


def _free(row: SagaRow, now_us: int) -> bool:
    expires = row["lease_expires_us"]
    return row["status"] == RUNNING and (row["owner"] is None or expires < now_us)


class FakeSagaRows:
    """The ``sagas`` table: every write where the SQL has a WHERE, the same WHERE."""

    def __init__(self, state: OrderState, scope: Scope) -> None:
        self._rows, self._scope = state.sagas, scope

    def _update(self, order_id: str, **values: Any) -> None:
        self._scope.writing("updated a saga")
        if order_id in self._rows:
            self._rows[order_id].update(values)

    def _held(self, state: SagaState, owner: str) -> SagaRow | None:
        row = self._rows.get(state.order_id)
        if row is None or (row["owner"], row["version"], row["status"]) != (
            owner,
            state.version,
            RUNNING,
        ):
            return None
        return row

    def _mine(self, order_ids: Collection[str], owner: str) -> list[SagaRow]:
        rows = (self._rows.get(order_id) for order_id in set(order_ids))
        return [r for r in rows if r is not None and r["owner"] == owner and r["status"] == RUNNING]

    async def create(
        self, order_id: str, card: Card, now_us: int, owner: str, expires_us: int
    ) -> None:
        self._scope.writing("created a saga")
        if order_id in self._rows:
            raise IntegrityViolation(f"sagas: order {order_id} has a saga")
        row: SagaRow = dict.fromkeys(column.name for column in sagas.columns)  # NULL
        row.update(
            _started(Step.RESERVE, now_us, owner, expires_us),
            order_id=order_id,
            payment_id="",
            authorized=False,
            captured=False,
            reason="",
            card_json=codec.card_json(card),
            version=0,
        )
        self._rows[order_id] = row

    async def lock(self, order_id: str) -> Held | None:
        row = self._rows.get(order_id)
        if row is None:
            return None
        return Held(row["owner"], row["version"], row["status"] == RUNNING, row["cancel_reason"])

    async def held_running(self, order_id: str, owner: str) -> Row | None:
        row = self._rows.get(order_id)
        if row is None or row["status"] != RUNNING or row["owner"] != owner:
            return None
        return cast(Row, dict(row))

    async def request_cancel(self, order_id: str, reason: str, now_us: int) -> None:
        self._update(order_id, cancel_reason=reason, updated_at_us=now_us)

    async def reopen_for_cancel(
        self, order_id: str, reason: str, now_us: int, owner: str, expires_us: int
    ) -> None:
        row = self._rows.get(order_id)
        self._update(
            order_id,
            **_started(Step.COMPENSATE, now_us, owner, expires_us),
            outcome=Outcome.CANCELLED.value,
            reason=reason,
            compensate_from=Step.COMPLETE.value,
            cancel_reason=reason,
            authorized=True,
            captured=True,
            version=0 if row is None else row["version"] + 1,
        )

    async def save(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]:
        self._scope.writing("saved a saga")
        row = self._held(state, owner)
        if row is None:
            return False, None
        row.update(_progress(state), updated_at_us=now_us, version=state.version + 1)
        return True, row["cancel_reason"]

    async def end(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]:
        self._scope.writing("ended a saga")
        row = self._held(state, owner)
        if row is None:
            return False, None
        row.update(_progress(state), step=Step.DONE.value, status=ENDED, card_json=None)
        row.update(retry_deadline_us=None, updated_at_us=now_us, version=state.version + 1)
        row.update(owner=None, lease_expires_us=None)
        return True, row["cancel_reason"]

    async def renew(self, order_ids: Collection[str], owner: str, expires_us: int) -> set[str]:
        self._scope.writing("renewed leases")
        rows = self._mine(order_ids, owner)
        for row in rows:
            row["lease_expires_us"] = expires_us
        return {row["order_id"] for row in rows}

    async def adopt(self, limit: int, owner: str, now_us: int, expires_us: int) -> list[str]:
        self._scope.writing("adopted sagas")
        free = sorted(
            (row for row in self._rows.values() if _free(row, now_us)),
            key=lambda row: row["started_at_us"],
        )[:limit]
        for row in free:
            row.update(owner=owner, lease_expires_us=expires_us, version=row["version"] + 1)
        return [row["order_id"] for row in free]

    async def release(self, order_ids: Collection[str], owner: str) -> None:
        self._scope.writing("released leases")
        for row in self._mine(order_ids, owner):
            row.update(owner=None, lease_expires_us=None, version=row["version"] + 1)

    async def running(self) -> tuple[int, int | None]:
        started = [r["started_at_us"] for r in self._rows.values() if r["status"] == RUNNING]
        return len(started), min(started, default=None)


class FakeOrderTx(FakeTx):
    def __init__(self, state: OrderState, outbox: FakeOutbox, on_commit: OnCommit | None) -> None:
        super().__init__(outbox)
        self.scope = Scope()
        self.orders = FakeOrderEvents(state, outbox, self.scope, on_commit)
        self.views = FakeOrderViews(state)
        self.requests = FakeOrderRequests(state, self.scope)
        self.sagas = FakeSagaRows(state, self.scope)


class FakeOrderUnitOfWork(FakeUnitOfWork[OrderState, FakeOrderTx]):
    """The order's unit of work in memory; ``on_commit(order_id, version, event)`` runs
    after each committed transaction for each event it appended to an order's stream."""

    def __init__(self, on_commit: OnCommit | None = None) -> None:
        super().__init__(OrderState(), lambda state, outbox: FakeOrderTx(state, outbox, on_commit))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FakeOrderTx]:
        async with super().write() as tx:
            yield tx
        for callback in tx.scope.after_commit:
            callback()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[FakeOrderTx]:
        async with super().read() as tx:
            tx.scope.read_only = True
            yield tx
