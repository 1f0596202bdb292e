"""The order's proto ↔ domain conversions: events (events.proto), money, lines, addresses.

Events are stored in the order's stream and published through the outbox as the same
proto bytes, so replay and consumers read one format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from emporium.common.v1 import money_pb2
from emporium.order.v1 import events_pb2 as ev
from emporium.order.v1 import order_service_pb2 as pb
from google.protobuf.message import Message

from services.order import domain
from services.order.saga import Outcome, SagaState, Step
from services.platform.clock import timestamp
from services.platform.codec import field_names, fields_of, from_message, from_row
from services.platform.db import Row


def money_proto(money: domain.Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=money.amount_minor, currency_code=money.currency_code)


def money(proto: money_pb2.Money) -> domain.Money:
    return domain.Money(proto.amount_minor, proto.currency_code)


def address_proto(address: domain.Address) -> pb.ShippingAddress:
    return pb.ShippingAddress(**fields_of(address, *field_names(domain.Address)))


def address(proto: pb.ShippingAddress) -> domain.Address:
    return from_message(domain.Address, proto)


def line_proto(line: domain.OrderLine) -> pb.OrderLine:
    return pb.OrderLine(
        **fields_of(line, "product_id", "sku", "name", "quantity"),
        unit_price=money_proto(line.unit_price),
        line_total=money_proto(line.line_total),
    )


def line(proto: pb.OrderLine) -> domain.OrderLine:
    return from_message(domain.OrderLine, proto, unit_price=money(proto.unit_price))


def to_proto(event: domain.Event) -> Message:
    """The proto of a domain event, as stored and published."""
    at = timestamp(event.occurred_at_us)
    match event:
        case domain.OrderPlaced():
            return ev.OrderPlaced(
                **fields_of(event, "order_id", "user_id", "idempotency_key"),
                lines=[line_proto(item) for item in event.lines],
                total=money_proto(event.total),
                shipping_address=address_proto(event.address),
                occur_time=at,
            )
        case domain.OrderConfirmed():
            return ev.OrderConfirmed(
                **fields_of(event, "order_id", "payment_id", "user_id"),
                lines=[line_proto(item) for item in event.lines],
                shipping_address=address_proto(event.address),
                occur_time=at,
            )
        case domain.OrderRejected():
            return ev.OrderRejected(
                **fields_of(event, "order_id", "reason", "payment_id"), occur_time=at
            )
        case domain.OrderCancelled():
            return ev.OrderCancelled(**fields_of(event, "order_id", "reason"), occur_time=at)
        case domain.OrderShipped():
            return ev.OrderShipped(
                **fields_of(event, "order_id", "shipment_id", "carrier", "tracking_number"),
                occur_time=at,
            )


def _occurred_at_us(message: Any) -> int:
    return int(message.occur_time.ToMicroseconds())


def _lines_and_address(p: ev.OrderPlaced | ev.OrderConfirmed) -> dict[str, Any]:
    """The fields of the events that carry the order's lines and shipping address."""
    return {
        "lines": tuple(line(item) for item in p.lines),
        "address": address(p.shipping_address),
    }


def _placed(p: ev.OrderPlaced) -> dict[str, Any]:
    return {**_lines_and_address(p), "total": money(p.total)}


def _decoder(
    kind: Callable[..., domain.Event],
    message_type: type[Message],
    converted: Callable[[Any], dict[str, Any]] | None = None,
) -> Callable[[bytes], domain.Event]:
    """The decoder of an event whose fields are its message's, but for the time and the
    fields ``converted(message)`` gives."""

    def decode(payload: bytes) -> domain.Event:
        p = message_type.FromString(payload)
        fields = converted(p) if converted is not None else {}
        return from_message(kind, p, occurred_at_us=_occurred_at_us(p), **fields)

    return decode


_DECODERS: dict[str, Callable[[bytes], domain.Event]] = {
    ev.OrderPlaced.DESCRIPTOR.full_name: _decoder(domain.OrderPlaced, ev.OrderPlaced, _placed),
    ev.OrderConfirmed.DESCRIPTOR.full_name: _decoder(
        domain.OrderConfirmed, ev.OrderConfirmed, _lines_and_address
    ),
    ev.OrderRejected.DESCRIPTOR.full_name: _decoder(domain.OrderRejected, ev.OrderRejected),
    ev.OrderCancelled.DESCRIPTOR.full_name: _decoder(domain.OrderCancelled, ev.OrderCancelled),
    ev.OrderShipped.DESCRIPTOR.full_name: _decoder(domain.OrderShipped, ev.OrderShipped),
}


def from_proto(event_type: str, payload: bytes) -> domain.Event:
    """The domain event stored as ``payload`` of the full proto name ``event_type``."""
    try:
        decode = _DECODERS[event_type]
    except KeyError:
        raise ValueError(f"unknown order event type {event_type!r}") from None
    return decode(payload)


# -- saga rows ---------------------------------------------------------------------------


def card_json(card: domain.Card) -> str:
    """The card as the running saga keeps it (the ``sagas`` row, until the saga ends)."""
    return json.dumps(asdict(card))


def card_from_json(text: str | None) -> domain.Card | None:
    return None if text is None else domain.Card(**json.loads(text))


def saga_state(m: Row, order: domain.Order) -> SagaState:
    """A ``sagas`` row as the saga's state; lines and total come from the order."""
    return from_row(
        SagaState,
        m,
        lines=tuple((line.sku, line.quantity) for line in order.lines),
        total=order.total,
        card=card_from_json(m["card_json"]),
        step=Step(m["step"]),
        authorized=bool(m["authorized"]),
        captured=bool(m["captured"]),
        outcome=None if m["outcome"] is None else Outcome(m["outcome"]),
        compensate_from=None if m["compensate_from"] is None else Step(m["compensate_from"]),
        resumed=False,
        doubtful=False,
    )
