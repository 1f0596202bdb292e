"""The read model: ``order_views`` rows folded from the order events.

One function, :func:`changes`, says what each event does to an order's view row. The live
path (:func:`project`, in the append's transaction) writes those changes as one INSERT or
UPDATE; the rebuild (:func:`rebuild_views`) folds the same changes in memory from the
stored events. Both paths share the fold, so a rebuild reproduces the live read model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update

from services.order import codec
from services.order.domain import (
    STATUS_AFTER,
    Address,
    Event,
    Money,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    OrderStatus,
)
from services.order.tables import order_events, order_views
from services.platform.codec import fields_of, from_row
from services.platform.db import Row, Transaction

_REBUILD_BATCH = 500
_INSERT = insert(order_views)
_UPDATE = update(order_views).where(order_views.c.order_id == bindparam("b_order_id"))
_CLEAR = delete(order_views)
_FIRST_EVENTS = (
    select(order_events.c.order_id)
    .where(order_events.c.order_id > bindparam("after"), order_events.c.version == 1)
    .order_by(order_events.c.order_id)
    .limit(bindparam("limit"))
)
_EVENTS_OF = (
    select(
        order_events.c.order_id,
        order_events.c.version,
        order_events.c.event_type,
        order_events.c.payload,
    )
    .where(order_events.c.order_id.in_(bindparam("ids", expanding=True)))
    .order_by(order_events.c.order_id, order_events.c.version)
)


def _dump(value: Any) -> str:
    # Deterministic text, so a rebuilt row is byte-identical to the live one.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _lines_json(lines: Iterable[OrderLine]) -> str:
    return _dump(
        [
            {
                "product_id": line.product_id,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price.amount_minor,
                "currency_code": line.unit_price.currency_code,
            }
            for line in lines
        ]
    )


def _address_json(address: Address) -> str:
    return _dump(
        {
            "name": address.name,
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "country_code": address.country_code,
        }
    )


def changes(event: Event, version: int) -> dict[str, Any]:
    """The columns of the view row that ``event`` (the stream's ``version``) sets."""
    row: dict[str, Any] = {
        "status": STATUS_AFTER[type(event)].value,
        "version": version,
        "updated_at_us": event.occurred_at_us,
    }
    match event:
        case OrderPlaced():
            row.update(
                order_id=event.order_id,
                user_id=event.user_id,
                currency_code=event.total.currency_code,
                total_minor=event.total.amount_minor,
                lines_json=_lines_json(event.lines),
                shipping_json=_address_json(event.address),
                reason="",
                payment_id="",
                shipment_id="",
                created_at_us=event.occurred_at_us,
            )
        case OrderConfirmed():
            row["payment_id"] = event.payment_id
        case OrderRejected():
            row["reason"] = event.reason
            if event.payment_id:
                row["payment_id"] = event.payment_id
        case OrderCancelled():
            row["reason"] = event.reason
        case OrderShipped():
            row["shipment_id"] = event.shipment_id
    return row


def placed_view(event: OrderPlaced) -> OrderView:
    """The view row :func:`project` inserts for a new order's first event."""
    return OrderView.from_row(changes(event, 1))


async def project(tx: Transaction, event: Event, version: int) -> None:
    """Applies ``event`` to the read model inside the caller's transaction."""
    row = changes(event, version)
    if isinstance(event, OrderPlaced):
        await tx.execute(_INSERT, row)
    else:
        await tx.execute(_UPDATE, {**row, "b_order_id": event.order_id})


#: The view's fields that its row holds as they are.
_AS_STORED = (
    "order_id",
    "user_id",
    "reason",
    "payment_id",
    "shipment_id",
    "version",
    "created_at_us",
    "updated_at_us",
)


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as the read side sees it."""

    order_id: str
    user_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Money
    address: Address
    reason: str
    payment_id: str
    shipment_id: str
    version: int
    created_at_us: int
    updated_at_us: int

    @classmethod
    def from_row(cls, m: Row | dict[str, Any]) -> OrderView:
        lines = tuple(
            OrderLine(
                item["product_id"],
                item["sku"],
                item["name"],
                item["quantity"],
                Money(item["unit_price_minor"], item["currency_code"]),
            )
            for item in json.loads(m["lines_json"])
        )
        return from_row(
            cls,
            m,
            status=OrderStatus(m["status"]),
            lines=lines,
            total=Money(m["total_minor"], m["currency_code"]),
            address=Address(**json.loads(m["shipping_json"])),
        )

    def row(self) -> dict[str, Any]:
        """The view as a row (for folding events onto a view already read)."""
        return {
            **fields_of(self, *_AS_STORED),
            "status": self.status.value,
            "currency_code": self.total.currency_code,
            "total_minor": self.total.amount_minor,
            "lines_json": _lines_json(self.lines),
            "shipping_json": _address_json(self.address),
        }

    def then(self, event: Event, version: int) -> OrderView:
        """This view after ``event``: the projector's fold, in memory."""
        return OrderView.from_row({**self.row(), **changes(event, version)})


async def _stored_events(tx: Transaction) -> AsyncIterator[tuple[str, int, Event]]:
    """Every stored event in (order, version) order, read a batch of orders at a time."""
    after = ""
    while True:
        first = await tx.fetch_all(_FIRST_EVENTS, {"after": after, "limit": _REBUILD_BATCH})
        ids = [row["order_id"] for row in first]
        if not ids:
            return
        for row in await tx.fetch_all(_EVENTS_OF, {"ids": ids}):
            event = codec.from_proto(row["event_type"], row["payload"])
            yield row["order_id"], row["version"], event
        after = ids[-1]


async def rebuild_views(tx: Transaction) -> int:
    """Empties ``order_views`` and folds every stream again; returns the number of orders."""
    await tx.execute(_CLEAR)
    batch: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    count = 0
    async for order_id, version, event in _stored_events(tx):
        if current is None or current["order_id"] != order_id:
            if current is not None:
                batch.append(current)
            current = {"order_id": order_id}
            count += 1
        current.update(changes(event, version))
        if len(batch) >= _REBUILD_BATCH:
            await tx.execute_many(_INSERT, batch)
            batch = []
    if current is not None:
        batch.append(current)
    if batch:
        await tx.execute_many(_INSERT, batch)
    return count
