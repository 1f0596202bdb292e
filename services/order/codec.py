"""The order's proto ↔ domain conversions: events (events.proto), money, lines, addresses.

Events are stored in the order's stream and published through the outbox as the same
proto bytes, so replay and consumers read one format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from emporium.common.v1 import money_pb2
from emporium.order.v1 import events_pb2 as ev
from emporium.order.v1 import order_service_pb2 as pb
from google.protobuf.message import Message

from services.order.domain import (
    Address,
    Card,
    Event,
    Money,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
)
from services.order.saga import Outcome, SagaState, Step
from services.platform.clock import timestamp
from services.platform.db import Row


def money_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=money.amount_minor, currency_code=money.currency_code)


def money(proto: money_pb2.Money) -> Money:
    return Money(proto.amount_minor, proto.currency_code)


def address_proto(address: Address) -> pb.ShippingAddress:
    return pb.ShippingAddress(
        name=address.name,
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        postal_code=address.postal_code,
        country_code=address.country_code,
    )


def address(proto: pb.ShippingAddress) -> Address:
    return Address(
        proto.name, proto.line1, proto.line2, proto.city, proto.postal_code, proto.country_code
    )


def line_proto(line: OrderLine) -> pb.OrderLine:
    return pb.OrderLine(
        product_id=line.product_id,
        sku=line.sku,
        name=line.name,
        quantity=line.quantity,
        unit_price=money_proto(line.unit_price),
        line_total=money_proto(line.line_total),
    )


def line(proto: pb.OrderLine) -> OrderLine:
    return OrderLine(
        proto.product_id, proto.sku, proto.name, proto.quantity, money(proto.unit_price)
    )


def to_proto(event: Event) -> Message:
    """The proto of a domain event, as stored and published."""
    at = timestamp(event.occurred_at_us)
    match event:
        case OrderPlaced():
            return ev.OrderPlaced(
                order_id=event.order_id,
                user_id=event.user_id,
                lines=[line_proto(item) for item in event.lines],
                total=money_proto(event.total),
                shipping_address=address_proto(event.address),
                idempotency_key=event.idempotency_key,
                occur_time=at,
            )
        case OrderConfirmed():
            return ev.OrderConfirmed(
                order_id=event.order_id,
                payment_id=event.payment_id,
                user_id=event.user_id,
                lines=[line_proto(item) for item in event.lines],
                shipping_address=address_proto(event.address),
                occur_time=at,
            )
        case OrderRejected():
            return ev.OrderRejected(
                order_id=event.order_id,
                reason=event.reason,
                payment_id=event.payment_id,
                occur_time=at,
            )
        case OrderCancelled():
            return ev.OrderCancelled(order_id=event.order_id, reason=event.reason, occur_time=at)
        case OrderShipped():
            return ev.OrderShipped(
                order_id=event.order_id,
                shipment_id=event.shipment_id,
                carrier=event.carrier,
                tracking_number=event.tracking_number,
                occur_time=at,
            )


def _placed(payload: bytes) -> Event:
    p = ev.OrderPlaced.FromString(payload)
    return OrderPlaced(
        p.order_id,
        p.user_id,
        tuple(line(item) for item in p.lines),
        money(p.total),
        address(p.shipping_address),
        p.idempotency_key,
        p.occur_time.ToMicroseconds(),
    )


def _confirmed(payload: bytes) -> Event:
    p = ev.OrderConfirmed.FromString(payload)
    return OrderConfirmed(
        p.order_id,
        p.payment_id,
        p.user_id,
        tuple(line(item) for item in p.lines),
        address(p.shipping_address),
        p.occur_time.ToMicroseconds(),
    )


def _rejected(payload: bytes) -> Event:
    p = ev.OrderRejected.FromString(payload)
    return OrderRejected(p.order_id, p.reason, p.payment_id, p.occur_time.ToMicroseconds())


def _cancelled(payload: bytes) -> Event:
    p = ev.OrderCancelled.FromString(payload)
    return OrderCancelled(p.order_id, p.reason, p.occur_time.ToMicroseconds())


def _shipped(payload: bytes) -> Event:
    p = ev.OrderShipped.FromString(payload)
    return OrderShipped(
        p.order_id, p.shipment_id, p.carrier, p.tracking_number, p.occur_time.ToMicroseconds()
    )


_DECODERS: dict[str, Callable[[bytes], Event]] = {
    ev.OrderPlaced.DESCRIPTOR.full_name: _placed,
    ev.OrderConfirmed.DESCRIPTOR.full_name: _confirmed,
    ev.OrderRejected.DESCRIPTOR.full_name: _rejected,
    ev.OrderCancelled.DESCRIPTOR.full_name: _cancelled,
    ev.OrderShipped.DESCRIPTOR.full_name: _shipped,
}


def from_proto(event_type: str, payload: bytes) -> Event:
    """The domain event stored as ``payload`` of the full proto name ``event_type``."""
    try:
        decode = _DECODERS[event_type]
    except KeyError:
        raise ValueError(f"unknown order event type {event_type!r}") from None
    return decode(payload)


# -- saga rows ---------------------------------------------------------------------------


def card_json(card: Card) -> str:
    """The card as the running saga keeps it (the ``sagas`` row, until the saga ends)."""
    return json.dumps(asdict(card))


def card_from_json(text: str | None) -> Card | None:
    return None if text is None else Card(**json.loads(text))


def saga_state(m: Row, order: Order) -> SagaState:
    """A ``sagas`` row as the saga's state; lines and total come from the order."""
    return SagaState(
        order_id=m["order_id"],
        lines=tuple((line.sku, line.quantity) for line in order.lines),
        total=order.total,
        card=card_from_json(m["card_json"]),
        step=Step(m["step"]),
        started_at_us=m["started_at_us"],
        attempts=m["attempts"],
        retry_deadline_us=m["retry_deadline_us"],
        payment_id=m["payment_id"],
        authorized=bool(m["authorized"]),
        captured=bool(m["captured"]),
        outcome=None if m["outcome"] is None else Outcome(m["outcome"]),
        reason=m["reason"],
        compensate_from=None if m["compensate_from"] is None else Step(m["compensate_from"]),
        cancel_reason=m["cancel_reason"],
        version=m["version"],
    )
