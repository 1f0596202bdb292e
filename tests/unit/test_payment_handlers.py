"""Payment's handlers on a fake unit of work and a scripted processor: no I/O."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.payment.domain import (
    AuthorizationExpired,
    AuthorizePayment,
    CapturePayment,
    Card,
    DeclineReason,
    GetPayment,
    Money,
    PaymentStatus,
    ProcessorResult,
    RefundPayment,
    VoidAuthorization,
)
from services.payment.handlers import Payments
from services.platform import auth
from services.platform.errors import AlreadyExists, NotFound, PermissionDenied
from tests.support.fakes import FakeUnitOfWork
from tests.support.fakes.payment import (
    FakePaymentTx,
    PaymentState,
    ScriptedProcessor,
    fake_payment_uow,
)

ORDER = auth.Caller("service:order", "svc-order", frozenset({auth.SERVICE_ROLE}))
CARD = Card("4242424242424242", 12, 2099, "123")
EUR = Money(2500, "EUR")
Uow = FakeUnitOfWork[PaymentState, FakePaymentTx]


@pytest.fixture
def clock() -> list[int]:
    return [1_000_000_000]


@pytest.fixture
def uow() -> Uow:
    return fake_payment_uow()


@pytest.fixture
def processor() -> ScriptedProcessor:
    return ScriptedProcessor(ProcessorResult.approve())


@pytest.fixture
def payments(uow: Uow, processor: ScriptedProcessor, clock: list[int]) -> Iterator[Payments]:
    ids = iter(f"pay-{n}" for n in range(100))
    auth.set_caller(ORDER)
    yield Payments(
        uow, processor, hold_seconds=60, clock=lambda: clock[0], new_id=lambda: next(ids)
    )
    auth.set_caller(None)


def _authorize(key: str = "k1", amount: Money = EUR) -> AuthorizePayment:
    return AuthorizePayment(key, "order-1", amount, CARD)


async def test_an_approved_authorization_is_stored_and_announced(
    payments: Payments, uow: Uow
) -> None:
    payment = await payments.authorize(_authorize())
    assert (payment.status, payment.card_last4) == (PaymentStatus.AUTHORIZED, "4242")
    assert uow.state.payments[payment.payment_id] == payment
    assert uow.outbox.event_types() == ["PaymentAuthorized"]


async def test_a_replayed_key_returns_the_first_result_without_the_processor(
    payments: Payments, processor: ScriptedProcessor
) -> None:
    first = await payments.authorize(_authorize())
    assert await payments.authorize(_authorize()) == first
    assert processor.calls == 1
    with pytest.raises(AlreadyExists):
        await payments.authorize(_authorize(amount=Money(1, "EUR")))


async def test_a_declined_card_is_recorded_declined(
    payments: Payments, processor: ScriptedProcessor, uow: Uow
) -> None:
    processor.result = ProcessorResult.decline(DeclineReason.INSUFFICIENT_FUNDS)
    payment = await payments.authorize(_authorize())
    assert (payment.status, payment.decline_reason) == (
        PaymentStatus.DECLINED,
        DeclineReason.INSUFFICIENT_FUNDS,
    )
    assert uow.outbox.event_types() == ["PaymentDeclined"]


async def test_capture_then_refund_in_part_then_in_full(payments: Payments, uow: Uow) -> None:
    payment = await payments.authorize(_authorize())
    captured = await payments.capture(CapturePayment(payment.payment_id))
    assert captured.status is PaymentStatus.CAPTURED
    part = await payments.refund(RefundPayment(payment.payment_id, Money(500, "EUR"), "", "r1"))
    again = await payments.refund(RefundPayment(payment.payment_id, Money(500, "EUR"), "", "r1"))
    assert part.refunded_minor == again.refunded_minor == 500
    rest = await payments.refund(RefundPayment(payment.payment_id, None, "", "r2"))
    assert (rest.status, rest.refunded_minor) == (PaymentStatus.REFUNDED, 2500)
    assert uow.outbox.event_types() == [
        "PaymentAuthorized",
        "PaymentCaptured",
        "PaymentRefunded",
        "PaymentRefunded",
    ]


async def test_an_expired_hold_is_voided_instead_of_captured(
    payments: Payments, uow: Uow, clock: list[int]
) -> None:
    payment = await payments.authorize(_authorize())
    clock[0] += 60 * 1_000_000
    with pytest.raises(AuthorizationExpired):
        await payments.capture(CapturePayment(payment.payment_id))
    assert uow.state.payments[payment.payment_id].status is PaymentStatus.VOIDED
    assert uow.outbox.event_types()[-1] == "PaymentVoided"


async def test_the_sweep_voids_only_expired_holds(
    payments: Payments, uow: Uow, clock: list[int]
) -> None:
    old = await payments.authorize(_authorize("k1"))
    clock[0] += 30 * 1_000_000
    young = await payments.authorize(_authorize("k2"))
    clock[0] += 31 * 1_000_000
    assert await payments.expire_due(limit=10) == 1
    assert uow.state.payments[old.payment_id].status is PaymentStatus.VOIDED
    assert uow.state.payments[young.payment_id].status is PaymentStatus.AUTHORIZED


async def test_void_is_idempotent_and_unknown_payments_are_not_found(payments: Payments) -> None:
    payment = await payments.authorize(_authorize())
    voided = await payments.void(VoidAuthorization(payment.payment_id, "cancelled"))
    assert await payments.void(VoidAuthorization(payment.payment_id, "cancelled")) == voided
    with pytest.raises(NotFound):
        await payments.get(GetPayment("missing"))


async def test_only_the_order_service_moves_money(payments: Payments) -> None:
    auth.set_caller(auth.Caller("user-1", "ada", frozenset({"customer"})))
    with pytest.raises(PermissionDenied):
        await payments.authorize(_authorize())
