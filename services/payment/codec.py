"""Payment's conversions: domain ↔ protobuf (the API's Payment, the events) and table rows."""

from __future__ import annotations

from typing import Any

from emporium.common.v1 import money_pb2
from emporium.payment.v1 import events_pb2 as events
from emporium.payment.v1 import payment_service_pb2 as pb

from services.payment.domain import DeclineReason, Money, Payment, PaymentStatus, Refund
from services.platform.clock import timestamp
from services.platform.db import Row


def money(value: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=value.amount_minor, currency_code=value.currency)


def minor(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency_code=currency)


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


# -- rows --------------------------------------------------------------------------------


def payment_from_row(m: Row) -> Payment:
    return Payment(
        payment_id=m["payment_id"],
        idempotency_key=m["idempotency_key"],
        order_id=m["order_id"],
        amount=Money(m["amount_minor"], m["currency"]),
        status=PaymentStatus(m["status"]),
        decline_reason=DeclineReason(m["decline_reason"]),
        card_last4=m["card_last4"],
        captured_minor=m["captured_minor"],
        refunded_minor=m["refunded_minor"],
        created_at_us=m["created_at_us"],
        updated_at_us=m["updated_at_us"],
        expires_at_us=m["expires_at_us"],
    )


def refund_from_row(m: Row) -> Refund:
    requested = m["requested_minor"]
    return Refund(
        refund_id=m["refund_id"],
        payment_id=m["payment_id"],
        idempotency_key=m["idempotency_key"],
        requested=None if requested is None else Money(requested, m["currency"]),
        amount=Money(m["amount_minor"], m["currency"]),
        reason=m["reason"],
        created_at_us=m["created_at_us"],
    )


def payment_state(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status.value,
        "decline_reason": payment.decline_reason.value,
        "captured_minor": payment.captured_minor,
        "refunded_minor": payment.refunded_minor,
        "updated_at_us": payment.updated_at_us,
    }
