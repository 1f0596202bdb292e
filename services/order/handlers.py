"""The order service's use cases: place, read, list, cancel, watch, and record shipments."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import astuple, dataclass

from emporium.fulfillment.v1 import events_pb2 as fulfillment_events
from sqlalchemy.ext.asyncio import AsyncSession

from services.order.domain import Order, OrderStatus, PlaceOrder, price_lines
from services.order.notifier import Notifier
from services.order.ports import Catalog, Fulfillment, ShipmentDispatched
from services.order.projector import OrderView, changes
from services.order.repository import (
    DuplicateRequest,
    OnCommit,
    OrderRequests,
    OrderStore,
    OrderViews,
)
from services.order.saga_runner import SagaRunner
from services.order.saga_store import (
    RUNNING,
    Lease,
    create_saga,
    lock_saga,
    reopen_for_cancel,
    request_cancel,
)
from services.platform import deadlines
from services.platform.auth import Caller
from services.platform.db import Database
from services.platform.errors import (
    FailedPrecondition,
    NotFound,
    Validator,
)
from services.platform.outbox import Envelope
from services.platform.paging import PageTokens

log = logging.getLogger("emporium.order")

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_REASON = 500
#: ListOrders pages: after (created_at_us, order_id) of the last order, per caller.
ORDER_PAGES = PageTokens("order.orders.v1", (int, str))


def _now_us() -> int:
    return time.time_ns() // 1000


def request_hash(command: PlaceOrder) -> str:
    """What makes two PlaceOrder requests "the same" for idempotency (no full card number)."""
    card = command.card
    canonical = {
        "lines": [[line.product_id, line.quantity] for line in command.lines],
        "address": list(astuple(command.address)),
        "card": [card.last4, card.expiry_month, card.expiry_year, card.holder_name],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Change:
    """One WatchOrder message: the order after a status change."""

    order: OrderView
    previous: OrderStatus | None
    at_us: int


class Orders:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        fulfillment: Fulfillment,
        runner: SagaRunner,
        notifier: Notifier,
        lease: Lease,
        *,
        on_commit: OnCommit | None = None,
        now_us: Callable[[], int] = _now_us,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        poll_interval: float = 0.2,
        cancel_wait: float = 5.0,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._fulfillment = fulfillment
        self._runner = runner
        self._notifier = notifier
        self._lease = lease
        self._on_commit = on_commit
        self._now_us = now_us
        self._new_id = new_id
        self._poll = poll_interval
        self._cancel_wait = cancel_wait

    # --- commands -------------------------------------------------------------------------

    async def place(self, caller: Caller, command: PlaceOrder) -> OrderView:
        """Prices the order, stores it with its saga in one transaction, starts the saga."""
        command.validate()
        fingerprint = request_hash(command)
        async with self._db.transaction() as session:
            earlier = await OrderRequests(session).find(caller.subject, command.idempotency_key)
        if earlier is not None:
            return await self._replayed(caller, earlier, fingerprint)
        products = await self._catalog.products([line.product_id for line in command.lines])
        lines, total = price_lines(command.lines, products)
        order_id, now = self._new_id(), self._now_us()
        placed = Order.place(order_id, caller.subject, command, lines, total, now)
        try:
            async with self._db.transaction() as session:
                await OrderRequests(session).add(
                    caller.subject, command.idempotency_key, fingerprint, order_id, now
                )
                await OrderStore(session, self._on_commit).append(Order(order_id), placed)
                await create_saga(session, order_id, command.card, now, self._lease)
        except DuplicateRequest:  # a concurrent request with the same key won
            async with self._db.transaction() as session:
                earlier = await OrderRequests(session).find(caller.subject, command.idempotency_key)
            assert earlier is not None
            return await self._replayed(caller, earlier, fingerprint)
        self._runner.start(order_id)
        return OrderView.from_row(changes(placed, 1))

    async def _replayed(
        self, caller: Caller, earlier: tuple[str, str], fingerprint: str
    ) -> OrderView:
        earlier_hash, order_id = earlier
        if earlier_hash != fingerprint:
            raise FailedPrecondition("idempotency_key was already used for a different order")
        return await self.get(caller, order_id)

    async def cancel(self, caller: Caller, order_id: str, reason: str) -> OrderView:
        """Cancels a pending order (its saga compensates) or a confirmed one that fulfillment
        agrees not to ship (refund and restock); waits a little for the outcome and returns
        the order as it then is."""
        reason = reason.strip() or "cancelled by the customer"
        v = Validator()
        v.text(order_id, "order_id", max_len=64)
        v.text(reason, "reason", max_len=MAX_REASON)
        v.raise_if_any()
        if await self._request_cancel(caller, order_id, reason):
            # Confirmed: fulfillment decides. Until it agrees nothing changes here, so a
            # dispatched order is never refunded and shipped units are never restocked.
            try:
                await self._fulfillment.cancel_shipment(order_id, reason)
            except ShipmentDispatched:
                raise FailedPrecondition(
                    "the order was dispatched already and cannot be cancelled"
                ) from None
            if await self._reopen(order_id, reason):
                self._runner.start(order_id)
        else:
            self._runner.poke(order_id)
        return await self._settled(caller, order_id)

    async def _request_cancel(self, caller: Caller, order_id: str, reason: str) -> bool:
        """Records the cancel request of a pending order; true if the order is confirmed
        (and not being cancelled already), which fulfillment must agree to first."""
        async with self._db.transaction() as session:
            saga = await lock_saga(session, order_id)
            order = await OrderStore(session).load(order_id)
            if not order.exists or not _may_see(caller, order.user_id) or saga is None:
                raise NotFound("no such order")
            if order.status is OrderStatus.CANCELLED:
                return False  # idempotent
            if order.status is OrderStatus.PENDING:
                if saga._mapping["cancel_reason"] is None:
                    await request_cancel(session, order_id, reason, self._now_us())
                return False
            if order.status is OrderStatus.CONFIRMED:
                return bool(saga._mapping["status"] != RUNNING)
            assert order.status is not None
            raise FailedPrecondition(
                f"an order that is {order.status.value.lower()} cannot be cancelled"
            )

    async def _reopen(self, order_id: str, reason: str) -> bool:
        """Reopens the ended saga of a confirmed order to refund and restock it (held
        here); false if a concurrent cancel did so first."""
        async with self._db.transaction() as session:
            saga = await lock_saga(session, order_id)
            order = await OrderStore(session).load(order_id)
            if saga is None or order.status is not OrderStatus.CONFIRMED:
                return False
            if saga._mapping["status"] == RUNNING:
                return False
            await reopen_for_cancel(session, order_id, reason, self._now_us(), self._lease)
            return True

    async def _settled(self, caller: Caller, order_id: str) -> OrderView:
        """The order once it reaches a final status, or as it is after ``cancel_wait`` (never
        longer than most of what is left of the caller's deadline)."""
        left = deadlines.remaining()
        budget = self._cancel_wait if left is None else min(self._cancel_wait, left * 0.8)
        last: OrderView | None = None
        async for change in self.watch(caller, order_id, timeout=budget):
            last = change.order
        assert last is not None
        return last

    async def record_shipment(self, session: AsyncSession, envelope: Envelope) -> None:
        """Consumer handler of fulfillment's ShipmentDispatched: appends OrderShipped."""
        dispatched = fulfillment_events.ShipmentDispatched.FromString(envelope.payload)
        order_id = dispatched.order_id
        saga = await lock_saga(session, order_id)
        store = OrderStore(session, self._on_commit)
        order = await store.load(order_id)
        if not order.exists or order.status is OrderStatus.PENDING:
            # Events of two streams may arrive out of order: retry until the order is confirmed.
            raise FailedPrecondition(f"order {order_id} is not confirmed yet")
        if order.status is OrderStatus.SHIPPED:
            return
        if order.status is OrderStatus.CONFIRMED and (
            saga is None or saga._mapping["status"] != RUNNING
        ):
            shipped = order.ship(
                dispatched.shipment_id,
                dispatched.carrier,
                dispatched.tracking_number,
                dispatched.occur_time.ToMicroseconds() or self._now_us(),
            )
            await store.append(order, shipped)
            return
        log.warning(
            "shipment dispatched for an order being cancelled or ended; not recorded",
            extra={"order_id": order_id, "shipment_id": dispatched.shipment_id},
        )

    # --- queries --------------------------------------------------------------------------

    async def get(self, caller: Caller, order_id: str) -> OrderView:
        async with self._db.transaction() as session:
            view = await OrderViews(session).get(order_id)
        if view is None or not _may_see(caller, view.user_id):
            raise NotFound("no such order")  # other users' orders are not disclosed
        return view

    async def list_orders(
        self, caller: Caller, page_size: int, page_token: str
    ) -> tuple[list[OrderView], str]:
        v = Validator()
        v.page_size(page_size, maximum=MAX_PAGE_SIZE)
        v.raise_if_any()
        limit = page_size or DEFAULT_PAGE_SIZE
        position = ORDER_PAGES.decode(page_token, caller.subject)
        after = None if position is None else (int(position[0]), str(position[1]))
        async with self._db.transaction() as session:
            views = await OrderViews(session).page(caller.subject, limit + 1, after)
        if len(views) > limit:
            last = views[limit - 1]
            return views[:limit], ORDER_PAGES.encode(
                (last.created_at_us, last.order_id), caller.subject
            )
        return views, ""

    async def watch(
        self, caller: Caller, order_id: str, *, timeout: float | None = None
    ) -> AsyncIterator[Change]:
        """The order now, then each status change until a final status (or ``timeout``)."""
        loop_time = _monotonic()
        view = await self.get(caller, order_id)
        yield Change(view, None, view.updated_at_us)
        while not view.status.is_final:
            wait = self._poll
            if timeout is not None:
                left = timeout - (_monotonic() - loop_time)
                if left <= 0:
                    return
                wait = min(wait, left)
            wakeup = self._notifier.arm(order_id)
            try:
                async with self._db.transaction() as session:
                    new = await OrderStore(session).events_after(order_id, view.version)
                if not new:
                    await self._notifier.wait(order_id, wakeup, wait)
                    continue
            finally:
                self._notifier.disarm(order_id, wakeup)
            for version, event in new:
                previous = view.status
                view = view.then(event, version)
                if view.status is not previous:
                    yield Change(view, previous, event.occurred_at_us)


def _may_see(caller: Caller, owner: str) -> bool:
    return caller.subject == owner or caller.is_admin


def _monotonic() -> float:
    return time.monotonic()
