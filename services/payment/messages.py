"""Payment's domain objects as protobuf messages: the API's Payment and the events."""

from __future__ import annotations

from emporium.common.v1 import money_pb2
from emporium.payment.v1 import events_pb2 as events
from emporium.payment.v1 import payment_service_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from services.payment.domain import Money, Payment


def money(value: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=value.amount_minor, currency_code=value.currency)


def minor(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency_code=currency)


def timestamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def payment(p: Payment) -> pb.Payment:
    currency = p.amount.currency
    return pb.Payment(
        payment_id=p.payment_id,
        order_id=p.order_id,
        amount=money(p.amount),
        status=pb.PaymentStatus.Value(f"PAYMENT_STATUS_{p.status.value}"),
        decline_reason=pb.DeclineReason.Value(f"DECLINE_REASON_{p.decline_reason.value}"),
        card_last4=p.card_last4,
        captured_amount=minor(p.captured_minor, currency),
        refunded_amount=minor(p.refunded_minor, currency),
        create_time=timestamp(p.created_at_us),
        update_time=timestamp(p.updated_at_us),
    )


def authorized(p: Payment) -> events.PaymentAuthorized:
    return events.PaymentAuthorized(
        payment_id=p.payment_id,
        order_id=p.order_id,
        amount=money(p.amount),
        card_last4=p.card_last4,
        occur_time=timestamp(p.updated_at_us),
    )


def declined(p: Payment) -> events.PaymentDeclined:
    return events.PaymentDeclined(
        payment_id=p.payment_id,
        order_id=p.order_id,
        amount=money(p.amount),
        decline_reason=pb.DeclineReason.Value(f"DECLINE_REASON_{p.decline_reason.value}"),
        occur_time=timestamp(p.updated_at_us),
    )


def captured(p: Payment) -> events.PaymentCaptured:
    return events.PaymentCaptured(
        payment_id=p.payment_id,
        order_id=p.order_id,
        amount=minor(p.captured_minor, p.amount.currency),
        occur_time=timestamp(p.updated_at_us),
    )


def voided(p: Payment, reason: str) -> events.PaymentVoided:
    return events.PaymentVoided(
        payment_id=p.payment_id,
        order_id=p.order_id,
        reason=reason,
        occur_time=timestamp(p.updated_at_us),
    )


def refunded(p: Payment, amount: Money, reason: str) -> events.PaymentRefunded:
    return events.PaymentRefunded(
        payment_id=p.payment_id,
        order_id=p.order_id,
        amount=money(amount),
        refunded_amount=minor(p.refunded_minor, p.amount.currency),
        reason=reason,
        occur_time=timestamp(p.updated_at_us),
    )
