"""The order's event store, read model queries and idempotency keys, within one session."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import and_, event, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.order import codec
from services.order.domain import Event, Order
from services.order.projector import OrderView, project
from services.order.tables import order_events, order_requests, order_views
from services.platform import outbox
from services.platform.errors import Conflict

#: The outbox stream every order event is published on.
STREAM = "order"

OnCommit = Callable[[str], None]


class DuplicateRequest(Exception):
    """Another PlaceOrder with the same (user, idempotency key) committed first."""


class OrderStore:
    """Event-sourced orders: load by replay, append with optimistic concurrency.

    Every append also updates the read model and writes the outbox row, in the caller's
    transaction; ``on_commit(order_id)`` runs once that transaction has committed (to wake
    watchers and the outbox relay).
    """

    def __init__(self, session: AsyncSession, on_commit: OnCommit | None = None) -> None:
        self._session = session
        self._on_commit = on_commit

    async def load(self, order_id: str) -> Order:
        """The order rebuilt from its stream (``exists`` is false for an unknown id)."""
        rows = await self._session.execute(
            select(order_events.c.event_type, order_events.c.payload)
            .where(order_events.c.order_id == order_id)
            .order_by(order_events.c.version)
        )
        return Order.replay(order_id, (codec.from_proto(t, p) for t, p in rows.all()))

    async def events_after(self, order_id: str, version: int) -> list[tuple[int, Event]]:
        rows = await self._session.execute(
            select(order_events.c.version, order_events.c.event_type, order_events.c.payload)
            .where(order_events.c.order_id == order_id, order_events.c.version > version)
            .order_by(order_events.c.version)
        )
        return [(v, codec.from_proto(t, p)) for v, t, p in rows.all()]

    async def append(self, order: Order, new: Event) -> None:
        """Appends ``new`` as the next version of ``order``'s stream and applies it.

        Raises :class:`Conflict` when another writer appended that version first; the
        caller's transaction is then unusable: reload in a new one and decide again.
        """
        version = order.version + 1
        proto = codec.to_proto(new)
        order.apply(new)  # checks the invariants before anything is written
        try:
            await self._session.execute(
                insert(order_events).values(
                    order_id=order.order_id,
                    version=version,
                    event_type=proto.DESCRIPTOR.full_name,
                    payload=proto.SerializeToString(),
                    occurred_at_us=new.occurred_at_us,
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"order {order.order_id} changed concurrently") from exc
        await project(self._session, new, version)
        await outbox.record(self._session, STREAM, proto, order.order_id)
        if self._on_commit is not None:
            self._after_commit(order.order_id, self._on_commit)

    def _after_commit(self, order_id: str, callback: OnCommit) -> None:
        def committed(_session: Session) -> None:
            callback(order_id)

        event.listen(self._session.sync_session, "after_commit", committed, once=True)


class OrderViews:
    """Queries of the read model."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, order_id: str) -> OrderView | None:
        row = (
            await self._session.execute(
                select(order_views).where(order_views.c.order_id == order_id)
            )
        ).first()
        return None if row is None else OrderView.from_row(row)

    async def page(
        self, user_id: str, limit: int, after: tuple[int, str] | None
    ) -> list[OrderView]:
        """The user's orders, newest first, after the keyset position ``after``."""
        query = select(order_views).where(order_views.c.user_id == user_id)
        if after is not None:
            created, order_id = after
            query = query.where(
                or_(
                    order_views.c.created_at_us < created,
                    and_(order_views.c.created_at_us == created, order_views.c.order_id < order_id),
                )
            )
        query = query.order_by(
            order_views.c.created_at_us.desc(), order_views.c.order_id.desc()
        ).limit(limit)
        return [OrderView.from_row(row) for row in await self._session.execute(query)]

    async def all_rows(self) -> list[tuple[object, ...]]:
        """Every view row in a stable order (to compare read models)."""
        rows = await self._session.execute(select(order_views).order_by(order_views.c.order_id))
        return [tuple(row) for row in rows]


class OrderRequests:
    """PlaceOrder's idempotency keys: (user, key) → the request's hash and its order."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(self, user_id: str, key: str) -> tuple[str, str] | None:
        row = (
            await self._session.execute(
                select(order_requests.c.request_hash, order_requests.c.order_id).where(
                    order_requests.c.user_id == user_id,
                    order_requests.c.idempotency_key == key,
                )
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def add(
        self, user_id: str, key: str, request_hash: str, order_id: str, now_us: int
    ) -> None:
        try:
            await self._session.execute(
                insert(order_requests).values(
                    user_id=user_id,
                    idempotency_key=key,
                    request_hash=request_hash,
                    order_id=order_id,
                    created_at_us=now_us,
                )
            )
        except IntegrityError as exc:
            raise DuplicateRequest(key) from exc
