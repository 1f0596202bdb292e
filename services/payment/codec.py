"""Payment's conversions: domain ↔ protobuf (the API's Payment, the events) and table rows."""

from __future__ import annotations

from typing import Any

from emporium.common.v1 import money_pb2
from emporium.payment.v1 import events_pb2 as events
from emporium.payment.v1 import payment_service_pb2 as pb

from services.payment.domain import Card, DeclineReason, Money, Payment, PaymentStatus, Refund
from services.platform.clock import timestamp
from services.platform.codec import fields_of, from_message, from_row
from services.platform.db import Row


def money(value: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=value.amount_minor, currency_code=value.currency)


def money_from(message: money_pb2.Money) -> Money:
    return Money(message.amount_minor, message.currency_code)


def card_from(message: pb.PaymentCard) -> Card:
    return from_message(Card, message)


def minor(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency_code=currency)


def _decline_reason(p: Payment) -> pb.DeclineReason.ValueType:
    return pb.DeclineReason.Value(f"DECLINE_REASON_{p.decline_reason.value}")


def payment(p: Payment) -> pb.Payment:
    currency = p.amount.currency
    return pb.Payment(
        **fields_of(p, "payment_id", "order_id", "card_last4"),
        amount=money(p.amount),
        status=pb.PaymentStatus.Value(f"PAYMENT_STATUS_{p.status.value}"),
        decline_reason=_decline_reason(p),
        captured_amount=minor(p.captured_minor, currency),
        refunded_amount=minor(p.refunded_minor, currency),
        create_time=timestamp(p.created_at_us),
        update_time=timestamp(p.updated_at_us),
    )


def _event(p: Payment) -> dict[str, Any]:
    """What every payment event says: the payment, its order and when it changed."""
    return {**fields_of(p, "payment_id", "order_id"), "occur_time": timestamp(p.updated_at_us)}


def authorized(p: Payment) -> events.PaymentAuthorized:
    return events.PaymentAuthorized(**_event(p), card_last4=p.card_last4, amount=money(p.amount))


def declined(p: Payment) -> events.PaymentDeclined:
    return events.PaymentDeclined(
        **_event(p), amount=money(p.amount), decline_reason=_decline_reason(p)
    )


def captured(p: Payment) -> events.PaymentCaptured:
    return events.PaymentCaptured(**_event(p), amount=minor(p.captured_minor, p.amount.currency))


def voided(p: Payment, reason: str) -> events.PaymentVoided:
    return events.PaymentVoided(**_event(p), reason=reason)


def refunded(p: Payment, amount: Money, reason: str) -> events.PaymentRefunded:
    return events.PaymentRefunded(
        **_event(p),
        amount=money(amount),
        refunded_amount=minor(p.refunded_minor, p.amount.currency),
        reason=reason,
    )


# -- rows --------------------------------------------------------------------------------


def payment_from_row(m: Row) -> Payment:
    return from_row(
        Payment,
        m,
        amount=Money(m["amount_minor"], m["currency"]),
        status=PaymentStatus(m["status"]),
        decline_reason=DeclineReason(m["decline_reason"]),
    )


def refund_from_row(m: Row) -> Refund:
    requested = m["requested_minor"]
    return from_row(
        Refund,
        m,
        requested=None if requested is None else Money(requested, m["currency"]),
        amount=Money(m["amount_minor"], m["currency"]),
    )


def payment_row(payment: Payment) -> dict[str, Any]:
    return {
        **fields_of(payment, "payment_id", "idempotency_key", "order_id", "card_last4"),
        **fields_of(payment, "created_at_us", "expires_at_us"),
        "amount_minor": payment.amount.amount_minor,
        "currency": payment.amount.currency,
        **payment_state(payment),
    }


def refund_row(refund: Refund) -> dict[str, Any]:
    requested = refund.requested
    return {
        **fields_of(refund, "refund_id", "payment_id", "idempotency_key", "reason"),
        "requested_minor": None if requested is None else requested.amount_minor,
        "amount_minor": refund.amount.amount_minor,
        "currency": refund.amount.currency,
        "created_at_us": refund.created_at_us,
    }


def payment_state(payment: Payment) -> dict[str, Any]:
    return {
        **fields_of(payment, "captured_minor", "refunded_minor", "updated_at_us"),
        "status": payment.status.value,
        "decline_reason": payment.decline_reason.value,
    }
