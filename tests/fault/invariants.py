"""What must hold for money and stock after any fault: one module, read from the databases.

A fault scenario records what it placed (:class:`Books`), lets the mesh settle
(:func:`settle`), then asks :func:`violations` for every broken rule, each as one line
naming the order or SKU. The rules (issue 10):

* every order ended ``SHIPPED``, ``REJECTED`` or ``CANCELLED``;
* ``SHIPPED`` ⇔ its payment ``CAPTURED`` for the order total and its reservation
  ``COMMITTED``; a shipped order is never refunded;
* an order that did not ship keeps no captured money, has no committed reservation and no
  dispatched shipment (an authorization left behind is released by payment's hold, see
  docs/payments.md, so it is not checked here);
* money is captured only for stock that was committed: an order whose payment was ever
  captured has a ``StockCommitted`` in inventory's outbox;
* each order was authorized at most once and captured at most once (one payment row,
  at most one ``PaymentAuthorized`` and one ``PaymentCaptured`` event);
* per SKU ``available + reserved + sold`` is what was stocked, nothing stays reserved,
  and ``sold`` is the units of the shipped orders.

Each service's own database is read (only read), by the URL the service was given.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from tests.support.cluster import read_rows
from tests.support.mesh import Mesh
from tests.support.workload import Books

FINAL = frozenset({"SHIPPED", "REJECTED", "CANCELLED"})


def url(mesh: Mesh, service: str) -> str:
    return mesh.env[service]["DATABASE_URL"]


async def statuses(mesh: Mesh, order_ids: Iterable[str]) -> dict[str, str]:
    """Each order's status in the order service's read model (missing: ``""``)."""
    rows = await read_rows(url(mesh, "order"), "SELECT order_id, status FROM order_views")
    known = {str(order_id): str(status) for order_id, status in rows}
    return {order_id: known.get(order_id, "") for order_id in order_ids}


async def settle(
    mesh: Mesh, order_ids: Iterable[str], timeout: float, wanted: frozenset[str] = FINAL
) -> dict[str, str]:
    """Waits until every order is final (or in ``wanted``), at most ``timeout`` seconds;
    the statuses then."""
    orders = list(order_ids)
    deadline = time.monotonic() + timeout
    while True:
        seen = await statuses(mesh, orders)
        if all(status in wanted for status in seen.values()) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.5)


@dataclass
class _Payment:
    payment_id: str
    status: str
    amount: int
    captured: int
    refunded: int


async def _payments(mesh: Mesh) -> tuple[dict[str, list[_Payment]], Counter[tuple[str, str]]]:
    """Payments per order, and (order id, event kind) counts of the payment outbox."""
    rows = await read_rows(
        url(mesh, "payment"),
        "SELECT payment_id, order_id, status, amount_minor, captured_minor, refunded_minor"
        " FROM payments",
    )
    by_order: dict[str, list[_Payment]] = defaultdict(list)
    order_of: dict[str, str] = {}
    for payment_id, order_id, status, amount, captured, refunded in rows:
        by_order[order_id].append(_Payment(payment_id, status, amount, captured, refunded))
        order_of[payment_id] = order_id
    events = Counter[tuple[str, str]]()
    query = "SELECT event_type, aggregate_id FROM outbox"
    for event_type, aggregate_id in await read_rows(url(mesh, "payment"), query):
        kind = str(event_type).rsplit(".", 1)[-1]
        events[(order_of.get(aggregate_id, aggregate_id), kind)] += 1
    return by_order, events


async def _by_order(mesh: Mesh, service: str, sql: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for order_id, status in await read_rows(url(mesh, service), sql):
        found[order_id].append(str(status))
    return found


def _money(order_id: str, status: str, total: int, payments: list[_Payment]) -> list[str]:
    if len(payments) > 1:
        return [f"{order_id}: {len(payments)} payments"]
    payment = payments[0] if payments else None
    if status == "SHIPPED":
        if payment is None or payment.status != "CAPTURED":
            return [f"{order_id}: shipped, payment {payment and payment.status}"]
        if not payment.captured == payment.amount == total:
            return [f"{order_id}: shipped, captured {payment.captured} of {total}"]
        if payment.refunded:
            return [f"{order_id}: shipped and refunded {payment.refunded}"]
        return []
    if payment is None:
        return []
    if payment.captured != payment.refunded:
        return [f"{order_id}: {status}, keeps {payment.captured - payment.refunded} captured"]
    return []


async def violations(mesh: Mesh, books: Books) -> list[str]:
    """Every broken rule, one line each (empty: all hold)."""
    seen = await statuses(mesh, books.lines)
    payments, events = await _payments(mesh)
    reservations = await _by_order(mesh, "inventory", "SELECT order_id, status FROM reservations")
    shipments = await _by_order(mesh, "fulfillment", "SELECT order_id, status FROM shipments")
    stock_events = await _by_order(mesh, "inventory", "SELECT aggregate_id, event_type FROM outbox")
    found: list[str] = []
    sold = Counter[str]()
    for order_id, status in seen.items():
        if status not in FINAL:
            found.append(f"{order_id}: not ended ({status or 'unknown'})")
        total = books.totals[order_id]
        found += _money(order_id, status, total, payments.get(order_id, []))
        for kind in ("PaymentAuthorized", "PaymentCaptured"):
            if events[(order_id, kind)] > 1:
                found.append(f"{order_id}: {kind} {events[(order_id, kind)]} times")
        ever_committed = any(e.endswith(".StockCommitted") for e in stock_events[order_id])
        if any(p.captured for p in payments.get(order_id, [])) and not ever_committed:
            found.append(f"{order_id}: {status}, money captured for stock never committed")
        committed = "COMMITTED" in reservations.get(order_id, [])
        dispatched = "DISPATCHED" in shipments.get(order_id, [])
        if status == "SHIPPED":
            sold.update(books.lines[order_id])
            if not committed:
                found.append(f"{order_id}: shipped, reservation {reservations.get(order_id)}")
        elif committed:
            found.append(f"{order_id}: {status}, its reservation is COMMITTED")
        if dispatched and status != "SHIPPED":
            found.append(f"{order_id}: {status}, but fulfillment dispatched it")
    found += await _stock(mesh, books, sold)
    return found


async def _stock(mesh: Mesh, books: Books, sold: Counter[str]) -> list[str]:
    query = "SELECT sku, available, reserved, sold FROM stock"
    rows = await read_rows(url(mesh, "inventory"), query)
    levels = {sku: (available, reserved, units) for sku, available, reserved, units in rows}
    found: list[str] = []
    for sku, stocked in books.stock.items():
        available, reserved, units = levels.get(sku, (0, 0, 0))
        if available + reserved + units != stocked:
            found.append(f"{sku}: available+reserved+sold = {available + reserved + units}")
        if reserved:
            found.append(f"{sku}: {reserved} units still reserved")
        if units != sold[sku]:
            found.append(f"{sku}: sold {units}, shipped orders hold {sold[sku]}")
    return found


async def assert_hold(mesh: Mesh, books: Books, seed: int) -> None:
    """Fails with every violation (and the seed that reproduces them)."""
    found = await violations(mesh, books)
    shown = "\n  ".join(found[:40]) + (f"\n  … {len(found) - 40} more" if len(found) > 40 else "")
    assert not found, f"seed {seed}: {len(found)} violations:\n  {shown}"
