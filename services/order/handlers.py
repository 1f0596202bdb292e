"""The order service's commands: PlaceOrder and CancelOrder.

The queries (GetOrder, ListOrders, WatchOrder) are in :mod:`services.order.queries`, the
ShipmentDispatched handler in :mod:`services.order.shipments`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, astuple, dataclass

from services.order.domain import Order, OrderStatus, PlaceOrder, price_lines
from services.order.ports import (
    Catalog,
    DuplicateRequest,
    Fulfillment,
    OrderUnitOfWork,
    ShipmentDispatched,
)
from services.order.projector import OrderView, placed_view
from services.order.queries import OrderQueries
from services.order.saga import SagaState, Step
from services.order.saga_runner import SagaRunner
from services.order.saga_store import Lease
from services.platform import deadlines
from services.platform.auth import Caller, may_read
from services.platform.clock import now_us
from services.platform.errors import (
    FailedPrecondition,
    NotFound,
    Validator,
)
from services.platform.ids import random_id

log = logging.getLogger("emporium.order")

MAX_REASON = 500


def request_hash(command: PlaceOrder) -> str:
    """What makes two PlaceOrder requests "the same" for idempotency (no full card number)."""
    card = command.card
    canonical = {
        "lines": [[line.product_id, line.quantity] for line in command.lines],
        "address": list(astuple(command.address)),
        "card": [card.last4, card.expiry_month, card.expiry_year, card.holder_name],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass(slots=True, eq=False)
class OrderCommands:
    uow: OrderUnitOfWork
    catalog: Catalog
    fulfillment: Fulfillment
    runner: SagaRunner
    queries: OrderQueries
    lease: Lease
    _: KW_ONLY
    clock: Callable[[], int] = now_us
    new_id: Callable[[], str] = random_id
    cancel_wait: float = 5.0

    async def place(self, caller: Caller, command: PlaceOrder) -> OrderView:
        """Prices the order, stores it with its saga in one transaction, starts the saga."""
        command.validate()
        fingerprint = request_hash(command)
        async with self.uow.read() as tx:
            earlier = await tx.requests.find(caller.subject, command.idempotency_key)
        if earlier is not None:
            return await self._replayed(caller, earlier, fingerprint)
        products = await self.catalog.products([line.product_id for line in command.lines])
        lines, total = price_lines(command.lines, products)
        order_id, now = self.new_id(), self.clock()
        placed = Order.place(order_id, caller.subject, command, lines, total, now)
        try:
            async with self.uow.write() as tx:
                await tx.requests.add(
                    caller.subject, command.idempotency_key, fingerprint, order_id, now
                )
                await tx.orders.append(Order(order_id), placed)
                lease = self.lease
                await tx.sagas.create(order_id, command.card, now, lease.owner, lease.expiry(now))
        except DuplicateRequest:  # a concurrent request with the same key won
            async with self.uow.read() as tx:
                earlier = await tx.requests.find(caller.subject, command.idempotency_key)
            assert earlier is not None
            return await self._replayed(caller, earlier, fingerprint)
        # The saga as sagas.create stored it: its first run need not read it back.
        sku_lines = tuple((line.sku, line.quantity) for line in lines)
        saga = SagaState(order_id, sku_lines, total, command.card, Step.RESERVE, now)
        self.runner.start(order_id, state=saga)
        return placed_view(placed)  # as the projector wrote it in the same transaction

    async def _replayed(
        self, caller: Caller, earlier: tuple[str, str], fingerprint: str
    ) -> OrderView:
        earlier_hash, order_id = earlier
        if earlier_hash != fingerprint:
            raise FailedPrecondition("idempotency_key was already used for a different order")
        return await self.queries.get(caller, order_id)

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
                await self.fulfillment.cancel_shipment(order_id, reason)
            except ShipmentDispatched:
                raise FailedPrecondition(
                    "the order was dispatched already and cannot be cancelled"
                ) from None
            if await self._reopen(order_id, reason):
                self.runner.start(order_id)
        else:
            self.runner.poke(order_id)
        return await self._settled(caller, order_id)

    async def _request_cancel(self, caller: Caller, order_id: str, reason: str) -> bool:
        """Records the cancel request of a pending order; true if the order is confirmed
        (and not being cancelled already), which fulfillment must agree to first."""
        async with self.uow.write() as tx:
            saga = await tx.sagas.lock(order_id)
            order = await tx.orders.load(order_id)
            if not order.exists or not may_read(caller, order.user_id) or saga is None:
                raise NotFound("no such order")
            if order.status is OrderStatus.CANCELLED:
                return False  # idempotent
            if order.status is OrderStatus.PENDING:
                if saga.cancel_reason is None:
                    await tx.sagas.request_cancel(order_id, reason, self.clock())
                return False
            if order.status is OrderStatus.CONFIRMED:
                return not saga.running
            assert order.status is not None
            raise FailedPrecondition(
                f"an order that is {order.status.value.lower()} cannot be cancelled"
            )

    async def _reopen(self, order_id: str, reason: str) -> bool:
        """Reopens the ended saga of a confirmed order to refund and restock it (held
        here); false if a concurrent cancel did so first."""
        async with self.uow.write() as tx:
            saga = await tx.sagas.lock(order_id)
            order = await tx.orders.load(order_id)
            if saga is None or saga.running or order.status is not OrderStatus.CONFIRMED:
                return False
            now = self.clock()
            owner, expires = self.lease.owner, self.lease.expiry(now)
            await tx.sagas.reopen_for_cancel(order_id, reason, now, owner, expires)
            return True

    async def _settled(self, caller: Caller, order_id: str) -> OrderView:
        """The order once it reaches a final status, or as it is after ``cancel_wait`` (never
        longer than most of what is left of the caller's deadline)."""
        left = deadlines.remaining()
        budget = self.cancel_wait if left is None else min(self.cancel_wait, left * 0.8)
        last: OrderView | None = None
        async for change in self.queries.watch(caller, order_id, timeout=budget):
            last = change.order
        assert last is not None
        return last
