"""The order's repositories on a database transaction (SQLAlchemy Core, built once): the
event store, the read model, PlaceOrder's idempotency keys and the saga rows, as one
:class:`~services.order.ports.OrderTx` per transaction (:func:`unit_of_work`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import and_, bindparam, insert, or_, select

from services.order import codec
from services.order.domain import Event, Order
from services.order.ports import DuplicateRequest, OnCommit
from services.order.projector import OrderView, project
from services.order.saga_rows import SqlSagaRows
from services.order.tables import order_events, order_requests, order_views
from services.platform.db import Database, IntegrityViolation, Transaction
from services.platform.errors import Conflict
from services.platform.outbox import SqlOutbox
from services.platform.uow import SqlRepository, SqlTx, SqlUnitOfWork

#: The outbox stream every order event is published on.
STREAM = "order"

_STREAM = (
    select(order_events.c.version, order_events.c.event_type, order_events.c.payload)
    .where(order_events.c.order_id == bindparam("order_id"))
    .order_by(order_events.c.version)
)
_AFTER = _STREAM.where(order_events.c.version > bindparam("after"))
_APPEND = insert(order_events)
_VIEW = select(order_views).where(order_views.c.order_id == bindparam("order_id"))
_MINE = select(order_views).where(order_views.c.user_id == bindparam("user_id"))
_NEWEST_FIRST = (order_views.c.created_at_us.desc(), order_views.c.order_id.desc())
_FIRST_PAGE = _MINE.order_by(*_NEWEST_FIRST).limit(bindparam("limit"))
_NEXT_PAGE = (
    _MINE.where(
        or_(
            order_views.c.created_at_us < bindparam("created"),
            and_(
                order_views.c.created_at_us == bindparam("created"),
                order_views.c.order_id < bindparam("after_id"),
            ),
        )
    )
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("limit"))
)
_ALL_VIEWS = select(order_views).order_by(order_views.c.order_id)
_VERSIONS = select(order_views.c.order_id, order_views.c.version).where(
    order_views.c.order_id.in_(bindparam("ids", expanding=True))
)
_REQUEST = select(order_requests.c.request_hash, order_requests.c.order_id).where(
    order_requests.c.user_id == bindparam("user_id"),
    order_requests.c.idempotency_key == bindparam("key"),
)
_ADD_REQUEST = insert(order_requests)


class SqlOrderEvents(SqlRepository):
    """Event-sourced orders: load by replay, append with optimistic concurrency.

    Every append also updates the read model and writes the outbox row in the same
    transaction; ``on_commit(order_id, version, event)`` runs once it has committed (the
    watchers' feed).
    """

    __slots__ = ("_on_commit", "_outbox")

    def __init__(self, tx: Transaction, outbox: SqlOutbox, on_commit: OnCommit | None) -> None:
        super().__init__(tx)
        self._outbox = outbox
        self._on_commit = on_commit

    async def load(self, order_id: str) -> Order:
        """The order rebuilt from its stream (``exists`` is false for an unknown id)."""
        rows = await self._tx.fetch_all(_STREAM, {"order_id": order_id})
        return Order.replay(
            order_id, (codec.from_proto(row["event_type"], row["payload"]) for row in rows)
        )

    async def events_after(self, order_id: str, version: int) -> list[tuple[int, Event]]:
        rows = await self._tx.fetch_all(_AFTER, {"order_id": order_id, "after": version})
        return [
            (row["version"], codec.from_proto(row["event_type"], row["payload"])) for row in rows
        ]

    async def append(self, order: Order, new: Event) -> None:
        """Appends ``new`` as the next version of ``order``'s stream and applies it.

        Raises :class:`Conflict` when another writer appended that version first; the
        transaction is then unusable: reload in a new one and decide again.
        """
        version = order.version + 1
        proto = codec.to_proto(new)
        order.apply(new)  # checks the invariants before anything is written
        row = {
            "order_id": order.order_id,
            "version": version,
            "event_type": proto.DESCRIPTOR.full_name,
            "payload": proto.SerializeToString(),
            "occurred_at_us": new.occurred_at_us,
        }
        try:
            await self._tx.execute(_APPEND, row)
        except IntegrityViolation as exc:
            raise Conflict(f"order {order.order_id} changed concurrently") from exc
        await project(self._tx, new, version)
        await self._outbox.record(proto, order.order_id)
        if self._on_commit is not None:
            callback, order_id = self._on_commit, order.order_id
            self._tx.after_commit(lambda: callback(order_id, version, new))


class SqlOrderViews(SqlRepository):
    """Queries of the read model."""

    async def get(self, order_id: str) -> OrderView | None:
        row = await self._tx.fetch_one(_VIEW, {"order_id": order_id})
        return None if row is None else OrderView.from_row(row)

    async def page(
        self, user_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[OrderView]:
        """The user's orders, newest first, after the keyset position ``after``."""
        if after is None:
            rows = await self._tx.fetch_all(_FIRST_PAGE, {"user_id": user_id, "limit": limit})
        else:
            params = {"user_id": user_id, "limit": limit, "created": after[0], "after_id": after[1]}
            rows = await self._tx.fetch_all(_NEXT_PAGE, params)
        return [OrderView.from_row(row) for row in rows]

    async def versions(self, order_ids: Sequence[str]) -> dict[str, int]:
        """The stored version of each of ``order_ids`` (unknown ones are absent)."""
        rows = await self._tx.fetch_all(_VERSIONS, {"ids": list(order_ids)})
        return {row["order_id"]: row["version"] for row in rows}

    async def all_rows(self) -> list[tuple[object, ...]]:
        """Every view row in a stable order (to compare read models)."""
        rows = await self._tx.fetch_all(_ALL_VIEWS)
        return [tuple(row[column.name] for column in order_views.columns) for row in rows]


class SqlOrderRequests(SqlRepository):
    """PlaceOrder's idempotency keys: (user, key) → the request's hash and its order."""

    async def find(self, user_id: str, key: str) -> tuple[str, str] | None:
        row = await self._tx.fetch_one(_REQUEST, {"user_id": user_id, "key": key})
        return None if row is None else (row["request_hash"], row["order_id"])

    async def add(
        self, user_id: str, key: str, request_hash: str, order_id: str, now_us: int
    ) -> None:
        row = {
            "user_id": user_id,
            "idempotency_key": key,
            "request_hash": request_hash,
            "order_id": order_id,
            "created_at_us": now_us,
        }
        try:
            await self._tx.execute(_ADD_REQUEST, row)
        except IntegrityViolation as exc:
            raise DuplicateRequest(key) from exc


class SqlOrderTx(SqlTx):
    """The order's repositories in one transaction."""

    stream = STREAM
    views: SqlOrderViews
    requests: SqlOrderRequests
    sagas: SqlSagaRows

    def __init__(self, tx: Transaction, on_commit: OnCommit | None = None) -> None:
        super().__init__(tx)
        self.orders = SqlOrderEvents(tx, self.outbox, on_commit)


def versions_of(
    uow: SqlUnitOfWork[SqlOrderTx],
) -> Callable[[Sequence[str]], Awaitable[dict[str, int]]]:
    """What the watchers' notifier polls: the stored versions of some orders."""

    async def versions(order_ids: Sequence[str]) -> dict[str, int]:
        async with uow.read() as tx:
            return await tx.views.versions(order_ids)

    return versions


def unit_of_work(db: Database, on_commit: OnCommit | None = None) -> SqlUnitOfWork[SqlOrderTx]:
    """The order's unit of work on ``db``; ``on_commit`` as :class:`SqlOrderEvents` says."""
    return SqlUnitOfWork(db, lambda tx: SqlOrderTx(tx, on_commit))
