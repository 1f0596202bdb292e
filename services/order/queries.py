"""The order service's queries: GetOrder, ListOrders and WatchOrder, all from the read model
(``order_views``) and the order's events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.order.domain import OrderStatus
from services.order.notifier import Notifier
from services.order.ports import OrderUnitOfWork
from services.order.projector import OrderView
from services.platform.auth import Caller, may_read
from services.platform.errors import NotFound, Validator
from services.platform.paging import PageTokens

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
#: ListOrders pages: after (created_at_us, order_id) of the last order, per caller.
ORDER_PAGES = PageTokens("order.orders.v1", (int, str))


@dataclass(frozen=True, slots=True)
class Change:
    """One WatchOrder message: the order after a status change."""

    order: OrderView
    previous: OrderStatus | None
    at_us: int


class OrderQueries:
    """Reads for the order's owner and admins (others' orders are NOT_FOUND).

    A watch wakes at once for a change committed in this process and within the notifier's
    poll interval for one committed by another instance sharing the database; it re-reads
    the order's events only then (at the latest every ``recheck`` seconds).
    """

    def __init__(self, uow: OrderUnitOfWork, notifier: Notifier, *, recheck: float = 5.0) -> None:
        self._uow = uow
        self._notifier = notifier
        self._recheck = recheck

    async def get(self, caller: Caller, order_id: str) -> OrderView:
        async with self._uow.read() as tx:
            view = await tx.views.get(order_id)
        if view is None or not may_read(caller, view.user_id):
            raise NotFound("no such order")  # other users' orders are not disclosed
        return view

    async def list_orders(
        self, caller: Caller, page_size: int, token: str
    ) -> tuple[list[OrderView], str]:
        v = Validator()
        v.page_size(page_size, maximum=MAX_PAGE_SIZE)
        v.raise_if_any()
        limit = page_size or DEFAULT_PAGE_SIZE
        position = ORDER_PAGES.decode(token, caller.subject)
        after = None if position is None else (int(position[0]), str(position[1]))
        async with self._uow.read() as tx:
            views = await tx.views.page(caller.subject, limit + 1, after)
        if len(views) > limit:
            last = views[limit - 1]
            return views[:limit], ORDER_PAGES.encode(
                (last.created_at_us, last.order_id), caller.subject
            )
        return views, ""

    async def watch(
        self, caller: Caller, order_id: str, *, timeout: float | None = None
    ) -> AsyncIterator[Change]:
        """The order now, then each status change until a final status (or ``timeout``).

        The changes committed here arrive with their events; the order's events are read
        only when another instance committed one (or every ``recheck`` seconds)."""
        started = time.monotonic()
        with self._notifier.watch(order_id) as feed:  # before the read: nothing slips by
            view = await self.get(caller, order_id)
            feed.seen = view.version
            yield Change(view, None, view.updated_at_us)
            while not view.status.is_final:
                wait = self._recheck
                if timeout is not None:
                    left = timeout - (time.monotonic() - started)
                    if left <= 0:
                        return
                    wait = min(wait, left)
                new = await feed.next(wait)
                if new is None:
                    async with self._uow.read() as tx:
                        new = await tx.orders.events_after(order_id, view.version)
                changes = []
                for version, event in new:
                    previous = view.status
                    view = view.then(event, version)
                    if view.status is not previous:
                        changes.append(Change(view, previous, event.occurred_at_us))
                feed.seen = view.version
                for change in changes:
                    yield change
