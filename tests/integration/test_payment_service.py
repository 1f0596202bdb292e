"""PaymentService over real gRPC, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from emporium.common.v1 import money_pb2
from emporium.payment.v1 import events_pb2 as events
from emporium.payment.v1 import payment_service_pb2 as pb
from emporium.payment.v1 import payment_service_pb2_grpc as pb_grpc
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import create_async_engine

from services.payment import main as payment_main
from services.payment import processor as cards
from services.platform.bus import Bus, decode, stream_name
from services.platform.config import ConfigError
from services.platform.embedded_redis import EmbeddedRedis
from services.platform.status import field_violations
from tests.conftest import Tokens
from tests.support import servers
from tests.support.databases import fresh_database
from tests.support.tokens import bearer

Metadata = tuple[tuple[str, str], ...]

AUTHORIZED = pb.PAYMENT_STATUS_AUTHORIZED
DECLINED = pb.PAYMENT_STATUS_DECLINED
CAPTURED = pb.PAYMENT_STATUS_CAPTURED
VOIDED = pb.PAYMENT_STATUS_VOIDED
REFUNDED = pb.PAYMENT_STATUS_REFUNDED
FAILED = pb.PAYMENT_STATUS_FAILED

NEXT_YEAR = datetime.date.today().year + 1
#: The service gives up on the processor after this long (the slow card hangs longer).
PROCESSOR_TIMEOUT = 0.5

_EVENT_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        events.PaymentAuthorized,
        events.PaymentDeclined,
        events.PaymentCaptured,
        events.PaymentVoided,
        events.PaymentRefunded,
    )
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eur(amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency_code="EUR")


def card(
    number: str = cards.APPROVE_VISA, month: int = 12, year: int = NEXT_YEAR, cvc: str = "123"
) -> pb.PaymentCard:
    return pb.PaymentCard(
        number=number, expiry_month=month, expiry_year=year, cvc=cvc, holder_name="Ada Lovelace"
    )


def authorization(
    amount: int = 1299,
    *,
    paid_with: pb.PaymentCard | None = None,
    key: str | None = None,
    order_id: str | None = None,
) -> pb.AuthorizePaymentRequest:
    return pb.AuthorizePaymentRequest(
        idempotency_key=key or unique("key"),
        order_id=order_id or unique("order"),
        amount=eur(amount),
        card=paid_with or card(),
    )


@dataclass
class Payments:
    """A running payment service, its database URL and the callers tests need."""

    stub: pb_grpc.PaymentServiceStub
    url: str
    order: Metadata
    admin: Metadata
    user: Metadata

    async def authorize(self, request: pb.AuthorizePaymentRequest) -> pb.Payment:
        return (await self.stub.AuthorizePayment(request, metadata=self.order)).payment

    async def authorized(self, amount: int = 1299) -> pb.Payment:
        payment = await self.authorize(authorization(amount))
        assert payment.status == AUTHORIZED
        return payment

    async def capture(self, payment_id: str) -> pb.Payment:
        request = pb.CapturePaymentRequest(payment_id=payment_id)
        return (await self.stub.CapturePayment(request, metadata=self.order)).payment

    async def void(self, payment_id: str, reason: str = "order cancelled") -> pb.Payment:
        request = pb.VoidAuthorizationRequest(payment_id=payment_id, reason=reason)
        return (await self.stub.VoidAuthorization(request, metadata=self.order)).payment

    async def refund(
        self, payment_id: str, amount: int | None = None, key: str = "", reason: str = "returned"
    ) -> pb.Payment:
        request = pb.RefundPaymentRequest(
            payment_id=payment_id,
            amount=None if amount is None else eur(amount),
            reason=reason,
            idempotency_key=key,
        )
        return (await self.stub.RefundPayment(request, metadata=self.order)).payment

    async def get(self, payment_id: str, metadata: Metadata | None = None) -> pb.Payment:
        request = pb.GetPaymentRequest(payment_id=payment_id)
        return (await self.stub.GetPayment(request, metadata=metadata or self.order)).payment

    async def events(self, payment_id: str) -> list[Message]:
        """The events recorded in the outbox for ``payment_id``, oldest first."""
        rows = await self._query(
            "SELECT stream, event_type, payload FROM outbox WHERE aggregate_id = :id ORDER BY id",
            id=payment_id,
        )
        assert {stream for stream, _, _ in rows} <= {"payment"}
        return [_EVENT_TYPES[kind].FromString(payload) for _, kind, payload in rows]

    async def rows(self, table: str, columns: str = "*") -> list[tuple[object, ...]]:
        return await self._query(f"SELECT {columns} FROM {table}")

    async def _query(self, sql: str, **params: str) -> list[tuple[object, ...]]:
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as connection:
                return [tuple(row) for row in await connection.execute(sa.text(sql), params)]
        finally:
            await engine.dispose()


@contextlib.asynccontextmanager
async def serve_payments(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens, **env: str
) -> AsyncIterator[Payments]:
    async with fresh_database(backend, tmp, "payment") as url:
        settings = servers.settings_for(
            "payment",
            url,
            IDENTITY_TARGET=identity_server.target,
            EMPORIUM_PAYMENT_PROCESSOR_TIMEOUT_SECONDS=str(PROCESSOR_TIMEOUT),
            EMPORIUM_PAYMENT_SLOW_CARD_SECONDS="5",
            **env,
        )
        async with servers.serve(payment_main.build, settings) as running:
            yield Payments(
                stub=pb_grpc.PaymentServiceStub(running.channel),
                url=url,
                order=bearer(tokens.service("order")),
                admin=bearer(tokens.admin),
                user=bearer(tokens.user("user-1")),
            )


@pytest.fixture
async def payments(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> AsyncIterator[Payments]:
    async with serve_payments(backend, tmp, identity_server, tokens) as running:
        yield running


async def _code_of(call: object) -> grpc.StatusCode:
    """The status code a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        await call  # type: ignore[misc]
    code: grpc.StatusCode = caught.value.code()
    return code


# -- AuthorizePayment ------------------------------------------------------------------------


async def test_an_approving_card_authorizes_the_amount_and_keeps_only_the_last_four_digits(
    payments: Payments,
) -> None:
    request = authorization(2499)
    payment = await payments.authorize(request)

    assert payment.status == AUTHORIZED
    assert payment.decline_reason == pb.DECLINE_REASON_UNSPECIFIED
    assert (payment.order_id, payment.card_last4) == (request.order_id, "4242")
    assert (payment.amount.amount_minor, payment.amount.currency_code) == (2499, "EUR")
    assert payment.captured_amount.amount_minor == payment.refunded_amount.amount_minor == 0
    assert payment.create_time.ToMicroseconds() > 0
    published = await payments.events(payment.payment_id)
    assert [type(e) for e in published] == [events.PaymentAuthorized]
    assert published[0].card_last4 == "4242"  # type: ignore[attr-defined]
    stored = repr(await payments.rows("payments")) + repr(await payments.rows("outbox"))
    assert cards.APPROVE_VISA not in stored
    assert "Ada Lovelace" not in stored


async def test_test_cards_decline_or_fail_with_their_reason(payments: Payments) -> None:
    expectations = [
        (card(cards.APPROVE_MASTERCARD), AUTHORIZED, pb.DECLINE_REASON_UNSPECIFIED),
        (card(cards.DECLINE), DECLINED, pb.DECLINE_REASON_CARD_DECLINED),
        (card(cards.INSUFFICIENT_FUNDS), DECLINED, pb.DECLINE_REASON_INSUFFICIENT_FUNDS),
        (card(cards.EXPIRED_CARD), DECLINED, pb.DECLINE_REASON_EXPIRED_CARD),
        (card(cards.INCORRECT_CVC), DECLINED, pb.DECLINE_REASON_INVALID_CARD),
        (card(year=NEXT_YEAR - 2), DECLINED, pb.DECLINE_REASON_EXPIRED_CARD),
        (card(cards.PROCESSOR_ERROR), FAILED, pb.DECLINE_REASON_PROCESSOR_ERROR),
    ]
    for paid_with, status, reason in expectations:
        payment = await payments.authorize(authorization(paid_with=paid_with))
        assert (payment.status, payment.decline_reason) == (status, reason), paid_with.number
        assert payment.card_last4 == paid_with.number[-4:]
        published = await payments.events(payment.payment_id)
        expected = events.PaymentAuthorized if status == AUTHORIZED else events.PaymentDeclined
        assert [type(e) for e in published] == [expected]
        if status != AUTHORIZED:
            assert published[0].decline_reason == reason  # type: ignore[attr-defined]


async def test_a_replay_with_the_same_key_returns_the_first_result_unchanged(
    payments: Payments,
) -> None:
    for paid_with in (card(), card(cards.DECLINE)):
        request = authorization(paid_with=paid_with)
        first = await payments.authorize(request)
        again = await payments.authorize(request)
        assert again == first
        assert len(await payments.events(first.payment_id)) == 1
    assert len(await payments.rows("payments")) == 2


async def test_the_same_key_for_a_different_amount_or_order_is_already_exists(
    payments: Payments,
) -> None:
    request = authorization(1000)
    first = await payments.authorize(request)
    for changed in (
        authorization(1001, key=request.idempotency_key, order_id=request.order_id),
        authorization(1000, key=request.idempotency_key, order_id=unique("order")),
    ):
        code = await _code_of(payments.stub.AuthorizePayment(changed, metadata=payments.order))
        assert code == grpc.StatusCode.ALREADY_EXISTS
    assert await payments.get(first.payment_id) == first


async def test_concurrent_calls_with_one_key_create_one_payment(payments: Payments) -> None:
    request = authorization(750)
    results = await asyncio.gather(*(payments.authorize(request) for _ in range(5)))
    assert len({p.payment_id for p in results}) == 1
    assert len(await payments.rows("payments")) == 1
    assert len(await payments.events(results[0].payment_id)) == 1


async def test_a_processor_slower_than_the_callers_deadline_leaves_a_failed_payment(
    payments: Payments,
) -> None:
    # A deadline that fires before the processor is asked leaves nothing to record, so the
    # first call's costs (identity's keys, the database pool) are paid beforehand.
    unknown = payments.stub.GetPayment(
        pb.GetPaymentRequest(payment_id=str(uuid.uuid4())), metadata=payments.order
    )
    assert await _code_of(unknown) == grpc.StatusCode.NOT_FOUND
    request = authorization(paid_with=card(cards.PROCESSOR_TIMEOUT))
    started = time.monotonic()
    call = payments.stub.AuthorizePayment(request, metadata=payments.order, timeout=0.2)
    assert await _code_of(call) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.0

    # The abandoned attempt is recorded FAILED by the service itself, without any retry.
    # (Waited for up to 10 s: the write follows the cancellation, and a loaded machine
    # can take seconds to schedule it.)
    statuses: list[object] = []
    deadline = time.monotonic() + 10.0
    while not statuses and time.monotonic() < deadline:
        statuses = [status for (status,) in await payments.rows("payments", "status")]
        if not statuses:
            await asyncio.sleep(0.05)
    assert statuses == ["FAILED"]

    replay = await payments.authorize(request)  # the caller retries with the same key
    assert (replay.status, replay.decline_reason) == (FAILED, pb.DECLINE_REASON_PROCESSOR_ERROR)
    assert len(await payments.rows("payments")) == 1
    assert [type(e) for e in await payments.events(replay.payment_id)] == [events.PaymentDeclined]
    code = await _code_of(
        payments.stub.CapturePayment(
            pb.CapturePaymentRequest(payment_id=replay.payment_id), metadata=payments.order
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_processor_timeout_without_a_caller_deadline_answers_failed(
    payments: Payments,
) -> None:
    started = time.monotonic()
    payment = await payments.authorize(authorization(paid_with=card(cards.PROCESSOR_TIMEOUT)))
    elapsed = time.monotonic() - started
    assert (payment.status, payment.decline_reason) == (FAILED, pb.DECLINE_REASON_PROCESSOR_ERROR)
    assert PROCESSOR_TIMEOUT <= elapsed < PROCESSOR_TIMEOUT + 1.5


async def test_invalid_authorizations_name_the_bad_field(payments: Payments) -> None:
    def amount(value: int, currency: str = "EUR") -> money_pb2.Money:
        return money_pb2.Money(amount_minor=value, currency_code=currency)

    good = authorization()
    cases: list[tuple[pb.AuthorizePaymentRequest, str]] = [
        (
            pb.AuthorizePaymentRequest(
                idempotency_key="", order_id="o", amount=eur(1), card=card()
            ),
            "idempotency_key",
        ),
        (authorization(key="k" * 129), "idempotency_key"),
        (authorization(order_id="o" * 65), "order_id"),
        (authorization(0), "amount.amount_minor"),
        (authorization(-5), "amount.amount_minor"),
        (
            pb.AuthorizePaymentRequest(idempotency_key="k", order_id="o", card=card()),
            "amount.amount_minor",
        ),
        (authorization(paid_with=card("4242424242424241")), "card.number"),
        (authorization(paid_with=card("4242 4242 4242 4242")), "card.number"),
        (authorization(paid_with=card("")), "card.number"),
        (authorization(paid_with=card(month=0)), "card.expiry_month"),
        (authorization(paid_with=card(month=13)), "card.expiry_month"),
        (authorization(paid_with=card(year=27)), "card.expiry_year"),
        (authorization(paid_with=card(cvc="12")), "card.cvc"),
        (authorization(paid_with=card(cvc="12a")), "card.cvc"),
    ]
    for currency in ("eur", "EURO", "", "E1R"):
        bad = pb.AuthorizePaymentRequest()
        bad.CopyFrom(good)
        bad.idempotency_key = unique("key")
        bad.amount.CopyFrom(amount(100, currency))
        cases.append((bad, "amount.currency_code"))
    long_name = authorization()
    long_name.card.holder_name = "n" * 101
    cases.append((long_name, "card.holder_name"))

    for request, field in cases:
        with pytest.raises(grpc.RpcError) as caught:
            await payments.stub.AuthorizePayment(request, metadata=payments.order)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in field_violations(caught.value), (field, field_violations(caught.value))
    assert await payments.rows("payments") == []


# -- CapturePayment and VoidAuthorization ------------------------------------------------------


async def test_capture_takes_the_authorized_amount_once(payments: Payments) -> None:
    payment = await payments.authorized(4200)
    captured = await payments.capture(payment.payment_id)
    assert captured.status == CAPTURED
    assert captured.captured_amount.amount_minor == 4200
    assert await payments.capture(payment.payment_id) == captured
    assert await payments.get(payment.payment_id) == captured
    assert [type(e) for e in await payments.events(payment.payment_id)] == [
        events.PaymentAuthorized,
        events.PaymentCaptured,
    ]


async def test_only_an_authorized_payment_can_be_captured(payments: Payments) -> None:
    declined = await payments.authorize(authorization(paid_with=card(cards.DECLINE)))
    voided = await payments.void((await payments.authorized()).payment_id)
    for payment_id in (declined.payment_id, voided.payment_id):
        code = await _code_of(
            payments.stub.CapturePayment(
                pb.CapturePaymentRequest(payment_id=payment_id), metadata=payments.order
            )
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await payments.get(voided.payment_id)).status == VOIDED


async def test_void_releases_an_authorization_once(payments: Payments) -> None:
    payment = await payments.authorized()
    voided = await payments.void(payment.payment_id, "out of stock")
    assert voided.status == VOIDED
    assert await payments.void(payment.payment_id) == voided
    published = await payments.events(payment.payment_id)
    assert [type(e) for e in published] == [events.PaymentAuthorized, events.PaymentVoided]
    assert published[1].reason == "out of stock"  # type: ignore[attr-defined]


async def test_a_captured_payment_cannot_be_voided(payments: Payments) -> None:
    payment = await payments.authorized()
    await payments.capture(payment.payment_id)
    code = await _code_of(
        payments.stub.VoidAuthorization(
            pb.VoidAuthorizationRequest(payment_id=payment.payment_id), metadata=payments.order
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await payments.get(payment.payment_id)).status == CAPTURED


async def test_voiding_a_declined_payment_changes_nothing(payments: Payments) -> None:
    declined = await payments.authorize(authorization(paid_with=card(cards.INSUFFICIENT_FUNDS)))
    assert await payments.void(declined.payment_id) == declined
    assert [type(e) for e in await payments.events(declined.payment_id)] == [events.PaymentDeclined]


# -- RefundPayment -----------------------------------------------------------------------------


async def test_refunds_in_parts_until_the_payment_is_refunded(payments: Payments) -> None:
    payment = await payments.authorized(1000)
    await payments.capture(payment.payment_id)

    partly = await payments.refund(payment.payment_id, 300)
    assert (partly.status, partly.refunded_amount.amount_minor) == (CAPTURED, 300)
    rest = await payments.refund(payment.payment_id)  # no amount: everything left
    assert (rest.status, rest.refunded_amount.amount_minor) == (REFUNDED, 1000)

    refunds = [
        e
        for e in await payments.events(payment.payment_id)
        if type(e).__name__ == "PaymentRefunded"
    ]
    assert [(e.amount.amount_minor, e.refunded_amount.amount_minor) for e in refunds] == [  # type: ignore[attr-defined]
        (300, 300),
        (700, 1000),
    ]


async def test_a_refund_replay_with_the_same_key_refunds_once(payments: Payments) -> None:
    payment = await payments.authorized(1000)
    await payments.capture(payment.payment_id)
    first = await payments.refund(payment.payment_id, 400, key="refund-1")
    again = await payments.refund(payment.payment_id, 400, key="refund-1")
    assert first.refunded_amount.amount_minor == again.refunded_amount.amount_minor == 400
    other = payments.stub.RefundPayment(
        pb.RefundPaymentRequest(
            payment_id=payment.payment_id, amount=eur(500), idempotency_key="refund-1"
        ),
        metadata=payments.order,
    )
    assert await _code_of(other) == grpc.StatusCode.ALREADY_EXISTS
    assert len(await payments.rows("refunds")) == 1


async def test_a_refund_beyond_what_is_left_or_before_capture_is_refused(
    payments: Payments,
) -> None:
    authorized = await payments.authorized(1000)

    def refund(amount: money_pb2.Money | None) -> object:
        request = pb.RefundPaymentRequest(payment_id=authorized.payment_id, amount=amount)
        return payments.stub.RefundPayment(request, metadata=payments.order)

    assert await _code_of(refund(eur(100))) == grpc.StatusCode.FAILED_PRECONDITION
    await payments.capture(authorized.payment_id)
    assert await _code_of(refund(eur(1001))) == grpc.StatusCode.FAILED_PRECONDITION
    wrong_currency = money_pb2.Money(amount_minor=100, currency_code="USD")
    with pytest.raises(grpc.RpcError) as caught:
        await refund(wrong_currency)  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "amount.currency_code" in field_violations(caught.value)
    assert await _code_of(refund(eur(0))) == grpc.StatusCode.INVALID_ARGUMENT
    await payments.refund(authorized.payment_id)
    assert await _code_of(refund(eur(1))) == grpc.StatusCode.FAILED_PRECONDITION
    assert (await payments.get(authorized.payment_id)).refunded_amount.amount_minor == 1000


# -- Who may call ------------------------------------------------------------------------------


async def test_only_the_order_service_may_move_money(payments: Payments, tokens: Tokens) -> None:
    payment = await payments.authorized()
    others: list[Metadata] = [payments.user, payments.admin, bearer(tokens.service("catalog"))]
    for metadata in others:
        calls = [
            payments.stub.AuthorizePayment(authorization(), metadata=metadata),
            payments.stub.CapturePayment(
                pb.CapturePaymentRequest(payment_id=payment.payment_id), metadata=metadata
            ),
            payments.stub.VoidAuthorization(
                pb.VoidAuthorizationRequest(payment_id=payment.payment_id), metadata=metadata
            ),
            payments.stub.RefundPayment(
                pb.RefundPaymentRequest(payment_id=payment.payment_id), metadata=metadata
            ),
        ]
        for call in calls:
            assert await _code_of(call) == grpc.StatusCode.PERMISSION_DENIED
    anonymous = payments.stub.AuthorizePayment(authorization())
    assert await _code_of(anonymous) == grpc.StatusCode.UNAUTHENTICATED
    assert (await payments.get(payment.payment_id)).status == AUTHORIZED
    assert len(await payments.rows("payments")) == 1


async def test_get_payment_serves_the_order_service_and_admins_only(payments: Payments) -> None:
    payment = await payments.authorized()
    assert await payments.get(payment.payment_id, payments.admin) == payment
    assert await payments.get(payment.payment_id, payments.order) == payment
    as_user = payments.stub.GetPayment(
        pb.GetPaymentRequest(payment_id=payment.payment_id), metadata=payments.user
    )
    assert await _code_of(as_user) == grpc.StatusCode.PERMISSION_DENIED


async def test_an_unknown_payment_is_not_found(payments: Payments) -> None:
    missing = str(uuid.uuid4())
    calls = [
        payments.stub.GetPayment(pb.GetPaymentRequest(payment_id=missing), metadata=payments.admin),
        payments.stub.CapturePayment(
            pb.CapturePaymentRequest(payment_id=missing), metadata=payments.order
        ),
        payments.stub.VoidAuthorization(
            pb.VoidAuthorizationRequest(payment_id=missing), metadata=payments.order
        ),
        payments.stub.RefundPayment(
            pb.RefundPaymentRequest(payment_id=missing), metadata=payments.order
        ),
    ]
    for call in calls:
        assert await _code_of(call) == grpc.StatusCode.NOT_FOUND


# -- Authorizations expire --------------------------------------------------------------------

#: A hold short enough for a test to outlive it.
SHORT_HOLD = 0.5


async def _outlive_hold(payment: pb.Payment) -> None:
    """Waits until ``payment``'s hold (SHORT_HOLD from its creation) has ended."""
    ends = payment.create_time.ToMicroseconds() / 1e6 + SHORT_HOLD
    await asyncio.sleep(max(0.0, ends - time.time()) + 0.05)


async def test_capturing_an_expired_authorization_is_refused_and_releases_the_hold(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> None:
    env = {
        "EMPORIUM_PAYMENT_AUTHORIZATION_HOLD_SECONDS": str(SHORT_HOLD),
        "EMPORIUM_PAYMENT_SWEEP_INTERVAL_SECONDS": "3600",  # only the capture sees it
    }
    async with serve_payments(backend, tmp, identity_server, tokens, **env) as payments:
        expiring = await payments.authorized()
        await _outlive_hold(expiring)
        refused = payments.stub.CapturePayment(
            pb.CapturePaymentRequest(payment_id=expiring.payment_id), metadata=payments.order
        )
        assert await _code_of(refused) == grpc.StatusCode.FAILED_PRECONDITION
        after = await payments.get(expiring.payment_id)
        assert after.status == VOIDED
        assert after.captured_amount.amount_minor == 0
        voided = (await payments.events(expiring.payment_id))[-1]
        assert isinstance(voided, events.PaymentVoided)
        assert voided.reason == "authorization expired"
        again = payments.stub.CapturePayment(
            pb.CapturePaymentRequest(payment_id=expiring.payment_id), metadata=payments.order
        )
        assert await _code_of(again) == grpc.StatusCode.FAILED_PRECONDITION
        assert len(await payments.events(expiring.payment_id)) == 2  # voided once


async def test_the_sweep_voids_authorizations_whose_hold_ended(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> None:
    env = {
        "EMPORIUM_PAYMENT_AUTHORIZATION_HOLD_SECONDS": str(SHORT_HOLD),
        "EMPORIUM_PAYMENT_SWEEP_INTERVAL_SECONDS": "0.1",
    }
    async with serve_payments(backend, tmp, identity_server, tokens, **env) as payments:
        held = [await payments.authorized() for _ in range(3)]
        declined = await payments.authorize(authorization(paid_with=card(cards.DECLINE)))
        deadline = time.monotonic() + SHORT_HOLD + 5
        statuses: list[int] = []
        while time.monotonic() < deadline:
            statuses = [(await payments.get(p.payment_id)).status for p in held]
            if statuses == [VOIDED] * 3:
                break
            await asyncio.sleep(0.05)
        assert statuses == [VOIDED] * 3
        for payment in held:
            kinds = [type(e).__name__ for e in await payments.events(payment.payment_id)]
            assert kinds == ["PaymentAuthorized", "PaymentVoided"]  # voided once
        assert (await payments.get(declined.payment_id)).status == DECLINED
        # Voiding an expired (now voided) authorization again answers it unchanged.
        assert (await payments.void(held[0].payment_id)).status == VOIDED


async def test_a_hold_outside_its_bounds_is_a_configuration_error(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> None:
    env = {"EMPORIUM_PAYMENT_AUTHORIZATION_HOLD_SECONDS": str(31 * 24 * 3600)}
    with pytest.raises(ConfigError, match="AUTHORIZATION_HOLD"):
        async with serve_payments(backend, tmp, identity_server, tokens, **env):
            pass


# -- Wired to the bus --------------------------------------------------------------------------


async def test_with_redis_the_relay_publishes_payment_events_to_the_payment_stream(
    backend: str, tmp: Path, identity_server: servers.Running, tokens: Tokens
) -> None:
    with EmbeddedRedis(tmp / "redis") as redis:
        bus = Bus.from_url(redis.url)
        try:
            async with fresh_database(backend, tmp, "payment") as url:
                settings = servers.settings_for(
                    "payment", url, IDENTITY_TARGET=identity_server.target, REDIS_URL=redis.url
                )
                async with servers.serve(payment_main.build, settings) as running:
                    stub = pb_grpc.PaymentServiceStub(running.channel)
                    order = bearer(tokens.service("order"))
                    payment = (await stub.AuthorizePayment(authorization(), metadata=order)).payment
                    await stub.CapturePayment(
                        pb.CapturePaymentRequest(payment_id=payment.payment_id), metadata=order
                    )
                    types: list[str] = []
                    for _ in range(100):  # up to 5 s; the relay is woken at each commit
                        entries = await bus.client.xrange(stream_name("payment"))
                        types = [decode(fields).event_type for _, fields in entries]
                        if len(types) == 2:
                            break
                        await asyncio.sleep(0.05)
                    assert types == [
                        events.PaymentAuthorized.DESCRIPTOR.full_name,
                        events.PaymentCaptured.DESCRIPTOR.full_name,
                    ]
        finally:
            await bus.close()
