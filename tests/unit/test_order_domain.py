"""The order aggregate, its command validation, pricing, event codec and projection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.order import codec
from services.order.domain import (
    Address,
    Card,
    Event,
    InvariantViolated,
    Money,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    OrderStatus,
    PlaceOrder,
    Product,
    RequestedLine,
    price_lines,
)
from services.order.projector import OrderView, changes
from services.platform.errors import FailedPrecondition, InvalidArgument

ADDRESS = Address("Ada Lovelace", "1 Analytical St", "", "London", "N1 9GU", "GB")
CARD = Card("4242424242424242", 12, 2030, "123", "Ada Lovelace")
BOOK = Product("p-book", "SKU-BOOK", "A book", Money(1250, "EUR"), active=True)
PEN = Product("p-pen", "SKU-PEN", "A pen", Money(199, "EUR"), active=True)


def _command(**overrides: object) -> PlaceOrder:
    command = PlaceOrder(
        "key-1", (RequestedLine("p-book", 2), RequestedLine("p-pen", 1)), CARD, ADDRESS
    )
    return replace(command, **overrides)  # type: ignore[arg-type]


def _placed(order_id: str = "o-1", at: int = 1_000) -> OrderPlaced:
    lines, total = price_lines(_command().lines, {"p-book": BOOK, "p-pen": PEN})
    return Order.place(order_id, "user-1", _command(), lines, total, at)


def _violations(command: PlaceOrder) -> set[str]:
    with pytest.raises(InvalidArgument) as caught:
        command.validate()
    return {v.field for v in caught.value.violations}


def test_a_valid_command_passes_validation() -> None:
    _command().validate()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 129}, "idempotency_key"),
        ({"lines": ()}, "lines"),
        ({"lines": tuple(RequestedLine(f"p-{i}", 1) for i in range(51))}, "lines"),
        ({"lines": (RequestedLine("", 1),)}, "lines[0].product_id"),
        ({"lines": (RequestedLine("p-book", 0),)}, "lines[0].quantity"),
        ({"lines": (RequestedLine("p-book", 101),)}, "lines[0].quantity"),
        (
            {"lines": (RequestedLine("p-book", 1), RequestedLine("p-book", 2))},
            "lines[1].product_id",
        ),
        ({"card": replace(CARD, number="4242")}, "card.number"),
        ({"card": replace(CARD, number="4242x42424242424")}, "card.number"),
        ({"card": replace(CARD, number="4242424242424241")}, "card.number"),  # fails Luhn
        ({"card": replace(CARD, expiry_month=13)}, "card.expiry_month"),
        ({"card": replace(CARD, expiry_year=30)}, "card.expiry_year"),
        ({"card": replace(CARD, cvc="12")}, "card.cvc"),
        ({"address": replace(ADDRESS, name="")}, "shipping_address.name"),
        ({"address": replace(ADDRESS, line1=" ")}, "shipping_address.line1"),
        ({"address": replace(ADDRESS, city="")}, "shipping_address.city"),
        ({"address": replace(ADDRESS, postal_code="")}, "shipping_address.postal_code"),
        ({"address": replace(ADDRESS, country_code="gb")}, "shipping_address.country_code"),
    ],
)
def test_validation_names_each_bad_field(overrides: dict[str, object], field: str) -> None:
    assert field in _violations(_command(**overrides))


def test_lines_are_priced_from_the_catalog_products() -> None:
    lines, total = price_lines(_command().lines, {"p-book": BOOK, "p-pen": PEN})
    assert [(line.sku, line.quantity, line.line_total) for line in lines] == [
        ("SKU-BOOK", 2, Money(2500, "EUR")),
        ("SKU-PEN", 1, Money(199, "EUR")),
    ]
    assert total == Money(2699, "EUR")


@pytest.mark.parametrize(
    ("products", "field"),
    [
        ({"p-pen": PEN}, "lines[0].product_id"),
        ({"p-book": replace(BOOK, active=False), "p-pen": PEN}, "lines[0].product_id"),
        ({"p-book": BOOK, "p-pen": replace(PEN, price=Money(199, "USD"))}, "lines[1].product_id"),
    ],
)
def test_unknown_inactive_or_foreign_currency_products_are_refused_by_line(
    products: dict[str, Product], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        price_lines(_command().lines, products)
    assert [v.field for v in caught.value.violations] == [field]


def test_replay_rebuilds_the_state_and_counts_the_version() -> None:
    events: list[Event] = [
        _placed(),
        OrderConfirmed("o-1", "pay-1", "user-1", (), ADDRESS, 2_000),
        OrderShipped("o-1", "ship-1", "DHL", "TRACK-1", 3_000),
    ]
    order = Order.replay("o-1", events)
    assert order.status is OrderStatus.SHIPPED
    assert order.version == 3
    assert (order.user_id, order.payment_id, order.shipment_id) == ("user-1", "pay-1", "ship-1")
    assert order.total == Money(2699, "EUR")
    assert (order.created_at_us, order.updated_at_us) == (1_000, 3_000)


def test_decisions_follow_the_state_machine() -> None:
    order = Order.replay("o-1", [_placed()])
    confirmed = order.confirm("pay-1", 2_000)
    assert confirmed.lines == order.lines  # fulfillment gets what it needs from the event
    order.apply(confirmed)
    with pytest.raises(FailedPrecondition):
        order.confirm("pay-1", 3_000)
    with pytest.raises(FailedPrecondition):
        order.reject("too late", "", 3_000)
    order.apply(order.ship("ship-1", "DHL", "T-1", 3_000))
    with pytest.raises(FailedPrecondition):
        order.cancel("changed my mind", 4_000)


@pytest.mark.parametrize("status_events", [1, 2])
def test_pending_and_confirmed_orders_can_be_cancelled(status_events: int) -> None:
    events: list[Event] = [_placed(), OrderConfirmed("o-1", "p", "user-1", (), ADDRESS, 2)]
    order = Order.replay("o-1", events[:status_events])
    order.apply(order.cancel("changed my mind", 5))
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "changed my mind"


def test_a_rejected_order_cannot_be_shipped_or_cancelled() -> None:
    order = Order.replay("o-1", [_placed(), OrderRejected("o-1", "out of stock: SKU-1", "", 2)])
    for decide in (lambda: order.ship("s", "c", "t", 3), lambda: order.cancel("why", 3)):
        with pytest.raises(FailedPrecondition):
            decide()


@pytest.mark.parametrize(
    "events",
    [
        [OrderConfirmed("o-1", "p", "u", (), ADDRESS, 1)],  # no OrderPlaced first
        [_placed(), _placed()],  # placed twice
        [_placed(), OrderShipped("o-1", "s", "c", "t", 2)],  # shipped before confirmed
        [_placed(), OrderCancelled("o-1", "r", 2), OrderConfirmed("o-1", "p", "u", (), ADDRESS, 3)],
        [_placed(order_id="o-2")],  # another order's event
    ],
)
def test_replay_refuses_streams_that_break_the_invariants(events: list[Event]) -> None:
    with pytest.raises(InvariantViolated):
        Order.replay("o-1", events)


@pytest.mark.parametrize(
    "event",
    [
        _placed(),
        OrderConfirmed("o-1", "pay-1", "user-1", _placed().lines, ADDRESS, 2_000),
        OrderRejected("o-1", "payment declined: card declined", "pay-1", 2_000),
        OrderCancelled("o-1", "changed my mind", 2_000),
        OrderShipped("o-1", "ship-1", "DHL", "TRACK-1", 3_000),
    ],
)
def test_every_event_survives_its_proto_round_trip(event: Event) -> None:
    proto = codec.to_proto(event)
    assert codec.from_proto(proto.DESCRIPTOR.full_name, proto.SerializeToString()) == event


def test_the_card_number_never_shows_in_a_repr() -> None:
    assert "4242424242424242" not in repr(CARD)
    assert "cvc" not in repr(CARD)


def test_the_projection_folds_events_into_the_view() -> None:
    view = OrderView.from_row(changes(_placed(), 1))
    assert (view.status, view.version, view.total) == (OrderStatus.PENDING, 1, Money(2699, "EUR"))
    view = view.then(OrderRejected("o-1", "payment declined: card declined", "pay-9", 2_000), 2)
    assert view.status is OrderStatus.REJECTED
    assert (view.reason, view.payment_id, view.version) == (
        "payment declined: card declined",
        "pay-9",
        2,
    )
    assert (view.created_at_us, view.updated_at_us) == (1_000, 2_000)
    assert view.lines == _placed().lines
    assert view.address == ADDRESS
