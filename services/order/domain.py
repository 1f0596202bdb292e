"""The order's domain: commands, events and the event-sourced ``Order`` aggregate.

Standard library only. The aggregate's state is the replay of its events
(:meth:`Order.replay`); decision methods (``confirm``, ``reject``, ...) check the
invariants and return the event to append without changing the state: the caller
appends it and then applies it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

# The card PlaceOrder takes and the saga keeps while it runs (never in an event or a log).
from services.platform.cards import Card as Card
from services.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, Validator
from services.platform.validation import Text, Validated

MAX_LINES, MAX_QUANTITY = 50, 100
MAX_IDEMPOTENCY_KEY = 128
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class OrderStatus(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    SHIPPED = "SHIPPED"

    @property
    def is_final(self) -> bool:
        """No further status change is possible (WatchOrder ends here)."""
        return self in (OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.SHIPPED)


class InvariantViolated(Exception):
    """An event does not fit the stream it is applied to (a corrupt or misordered stream)."""


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency_code: str

    def times(self, factor: int) -> Money:
        return Money(self.amount_minor * factor, self.currency_code)


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country_code: str


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A priced line: the catalog's product, SKU, name and unit price at order time."""

    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True)
class Product:
    """What the order needs to know of a catalog product."""

    product_id: str
    sku: str
    name: str
    price: Money
    active: bool


@dataclass(frozen=True, slots=True)
class RequestedLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrder(Validated):
    """Command: place an order for the caller (prices are looked up, never given)."""

    idempotency_key: Annotated[str, Text(MAX_IDEMPOTENCY_KEY)]
    lines: tuple[RequestedLine, ...]
    card: Card
    address: Address

    def check(self, v: Validator) -> None:
        if v.check(0 < len(self.lines) <= MAX_LINES, "lines", f"must have 1-{MAX_LINES} lines"):
            seen: set[str] = set()
            for i, line in enumerate(self.lines):
                v.text(line.product_id, f"lines[{i}].product_id", max_len=64)
                v.check(line.product_id not in seen, f"lines[{i}].product_id", "is a duplicate")
                seen.add(line.product_id)
                v.positive(line.quantity, f"lines[{i}].quantity", maximum=MAX_QUANTITY)
        self.card.check(v)
        address = self.address
        v.text(address.name, "shipping_address.name", max_len=100)
        v.text(address.line1, "shipping_address.line1", max_len=200)
        v.text(address.line2, "shipping_address.line2", max_len=200, required=False)
        v.text(address.city, "shipping_address.city", max_len=100)
        v.text(address.postal_code, "shipping_address.postal_code", max_len=20)
        v.check(
            bool(_COUNTRY.match(address.country_code)),
            "shipping_address.country_code",
            "must be an ISO 3166-1 alpha-2 code, e.g. DE",
        )


def price_lines(
    requested: Sequence[RequestedLine], products: Mapping[str, Product]
) -> tuple[tuple[OrderLine, ...], Money]:
    """Prices every line from the catalog's products; unknown, inactive or mixed-currency
    products are field violations naming the line."""
    violations: list[FieldViolation] = []
    lines: list[OrderLine] = []
    currency = ""
    for i, line in enumerate(requested):
        product = products.get(line.product_id)
        path = f"lines[{i}].product_id"
        if product is None:
            violations.append(FieldViolation(path, "no such product"))
            continue
        if not product.active:
            violations.append(FieldViolation(path, "the product is not for sale"))
            continue
        currency = currency or product.price.currency_code
        if product.price.currency_code != currency:
            violations.append(
                FieldViolation(path, f"is priced in another currency than {currency}")
            )
            continue
        lines.append(
            OrderLine(product.product_id, product.sku, product.name, line.quantity, product.price)
        )
    if violations:
        raise InvalidArgument(violations)
    total = Money(sum(line.line_total.amount_minor for line in lines), currency)
    return tuple(lines), total


# --- events (facts, past tense) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str
    user_id: str
    lines: tuple[OrderLine, ...]
    total: Money
    address: Address
    idempotency_key: str
    occurred_at_us: int


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    order_id: str
    payment_id: str
    user_id: str
    lines: tuple[OrderLine, ...]
    address: Address
    occurred_at_us: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: str
    reason: str
    payment_id: str
    occurred_at_us: int


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: str
    reason: str
    occurred_at_us: int


@dataclass(frozen=True, slots=True)
class OrderShipped:
    order_id: str
    shipment_id: str
    carrier: str
    tracking_number: str
    occurred_at_us: int


Event = OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled | OrderShipped

STATUS_AFTER: dict[type[Event], OrderStatus] = {
    OrderPlaced: OrderStatus.PENDING,
    OrderConfirmed: OrderStatus.CONFIRMED,
    OrderRejected: OrderStatus.REJECTED,
    OrderCancelled: OrderStatus.CANCELLED,
    OrderShipped: OrderStatus.SHIPPED,
}

# Which status each event may follow: the order's state machine, checked on every apply.
_ALLOWED_FROM: dict[type[Event], frozenset[OrderStatus | None]] = {
    OrderPlaced: frozenset({None}),
    OrderConfirmed: frozenset({OrderStatus.PENDING}),
    OrderRejected: frozenset({OrderStatus.PENDING}),
    OrderCancelled: frozenset({OrderStatus.PENDING, OrderStatus.CONFIRMED}),
    OrderShipped: frozenset({OrderStatus.CONFIRMED}),
}


class Order:
    """The event-sourced order. Build it with :meth:`replay`; never mutate it but by
    :meth:`apply`."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.version = 0
        self.status: OrderStatus | None = None
        self.user_id = ""
        self.lines: tuple[OrderLine, ...] = ()
        self.total = Money(0, "")
        self.address = Address("", "", "", "", "", "")
        self.idempotency_key = ""
        self.reason = ""
        self.payment_id = ""
        self.shipment_id = ""
        self.created_at_us = 0
        self.updated_at_us = 0

    @classmethod
    def replay(cls, order_id: str, events: Iterable[Event]) -> Order:
        order = cls(order_id)
        for event in events:
            order.apply(event)
        return order

    @property
    def exists(self) -> bool:
        return self.version > 0

    def apply(self, event: Event) -> None:
        """Folds one event into the state; refuses events the state machine forbids."""
        if event.order_id != self.order_id:
            raise InvariantViolated(f"event of order {event.order_id} in stream {self.order_id}")
        if self.status not in _ALLOWED_FROM[type(event)]:
            raise InvariantViolated(f"{type(event).__name__} cannot follow status {self.status}")
        match event:
            case OrderPlaced():
                self.user_id = event.user_id
                self.lines = event.lines
                self.total = event.total
                self.address = event.address
                self.idempotency_key = event.idempotency_key
                self.created_at_us = event.occurred_at_us
            case OrderConfirmed():
                self.payment_id = event.payment_id
            case OrderRejected():
                self.reason = event.reason
                self.payment_id = event.payment_id or self.payment_id
            case OrderCancelled():
                self.reason = event.reason
            case OrderShipped():
                self.shipment_id = event.shipment_id
        self.status = STATUS_AFTER[type(event)]
        self.updated_at_us = event.occurred_at_us
        self.version += 1

    # --- decisions: check, then return the event to append ------------------------------

    @staticmethod
    def place(
        order_id: str,
        user_id: str,
        command: PlaceOrder,
        lines: tuple[OrderLine, ...],
        total: Money,
        now_us: int,
    ) -> OrderPlaced:
        return OrderPlaced(
            order_id, user_id, lines, total, command.address, command.idempotency_key, now_us
        )

    def _require(self, *allowed: OrderStatus, action: str) -> None:
        if self.status not in allowed:
            state = "unknown" if self.status is None else self.status.value.lower()
            raise FailedPrecondition(f"cannot {action} an order that is {state}")

    def confirm(self, payment_id: str, now_us: int) -> OrderConfirmed:
        self._require(OrderStatus.PENDING, action="confirm")
        return OrderConfirmed(
            self.order_id, payment_id, self.user_id, self.lines, self.address, now_us
        )

    def reject(self, reason: str, payment_id: str, now_us: int) -> OrderRejected:
        self._require(OrderStatus.PENDING, action="reject")
        return OrderRejected(self.order_id, reason, payment_id, now_us)

    def cancel(self, reason: str, now_us: int) -> OrderCancelled:
        self._require(OrderStatus.PENDING, OrderStatus.CONFIRMED, action="cancel")
        return OrderCancelled(self.order_id, reason, now_us)

    def ship(self, shipment_id: str, carrier: str, tracking: str, now_us: int) -> OrderShipped:
        self._require(OrderStatus.CONFIRMED, action="ship")
        return OrderShipped(self.order_id, shipment_id, carrier, tracking, now_us)
