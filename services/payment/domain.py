"""Payment's domain: money, payments and their state machine (the card they are authorized
with is platform/cards.py's). Standard library only.

A payment is created by an authorization, which the processor approves (AUTHORIZED),
declines (DECLINED) or fails (FAILED: error or timeout; nothing is held). From AUTHORIZED
it is captured (CAPTURED) or voided (VOIDED); a captured payment is refunded in one or more
parts until nothing is left (REFUNDED). An authorization holds money only until its
``expires_at_us``: after that it cannot be captured and is voided.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from typing import Annotated

from services.platform.cards import Card as Card  # the card payment authorizes with
from services.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, Validator
from services.platform.validation import Text, Validated

CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_AMOUNT_MINOR = 10**12
MAX_KEY, MAX_ID, MAX_REASON = 128, 64, 200

PaymentId = Annotated[str, Text(MAX_ID)]


class PaymentStatus(enum.StrEnum):
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    FAILED = "FAILED"


class DeclineReason(enum.StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    CARD_DECLINED = "CARD_DECLINED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    EXPIRED_CARD = "EXPIRED_CARD"
    INVALID_CARD = "INVALID_CARD"
    PROCESSOR_ERROR = "PROCESSOR_ERROR"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one ISO 4217 currency."""

    amount_minor: int
    currency: str

    def check(self, v: Validator, field: str) -> None:
        v.positive(self.amount_minor, f"{field}.amount_minor", maximum=MAX_AMOUNT_MINOR)
        v.check(
            bool(CURRENCY.match(self.currency)),
            f"{field}.currency_code",
            "must be an ISO 4217 code of three upper-case letters",
        )


@dataclass(frozen=True, slots=True)
class ProcessorResult:
    """The processor's answer to an authorization."""

    approved: bool
    decline_reason: DeclineReason = DeclineReason.UNSPECIFIED

    @classmethod
    def approve(cls) -> ProcessorResult:
        return cls(True)

    @classmethod
    def decline(cls, reason: DeclineReason) -> ProcessorResult:
        return cls(False, reason)

    @property
    def status(self) -> PaymentStatus:
        if self.approved:
            return PaymentStatus.AUTHORIZED
        if self.decline_reason is DeclineReason.PROCESSOR_ERROR:
            return PaymentStatus.FAILED
        return PaymentStatus.DECLINED


PROCESSOR_FAILED = ProcessorResult.decline(DeclineReason.PROCESSOR_ERROR)
#: The reason recorded on the PaymentVoided event of an authorization whose hold ended.
EXPIRED_REASON = "authorization expired"


class AuthorizationExpired(FailedPrecondition):
    """Capture of an authorization whose hold has ended: nothing is held any more."""

    def __init__(self) -> None:
        super().__init__("the authorization expired and was voided; authorize again")


@dataclass(frozen=True, slots=True)
class Payment:
    """One authorization attempt for an order and what happened to it since."""

    payment_id: str
    idempotency_key: str
    order_id: str
    amount: Money
    status: PaymentStatus
    decline_reason: DeclineReason
    card_last4: str
    captured_minor: int
    refunded_minor: int
    created_at_us: int
    updated_at_us: int
    #: When an authorization's hold ends (meaningful while AUTHORIZED).
    expires_at_us: int

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.refunded_minor

    def expired(self, now_us: int) -> bool:
        """Whether this is an authorization whose hold has ended."""
        return self.status is PaymentStatus.AUTHORIZED and now_us >= self.expires_at_us

    def _state_error(self, action: str) -> FailedPrecondition:
        return FailedPrecondition(f"cannot {action} a payment that is {self.status.lower()}")

    def capture(self, now_us: int) -> Payment:
        """Captures the authorized amount; ``self`` when it already is captured."""
        if self.status is PaymentStatus.CAPTURED:
            return self
        if self.status is not PaymentStatus.AUTHORIZED:
            raise self._state_error("capture")
        if self.expired(now_us):
            raise AuthorizationExpired()
        return dataclasses.replace(
            self,
            status=PaymentStatus.CAPTURED,
            captured_minor=self.amount.amount_minor,
            updated_at_us=now_us,
        )

    def void(self, now_us: int) -> Payment:
        """Releases the hold; ``self`` when nothing is held (voided, declined, failed)."""
        if self.status in (PaymentStatus.VOIDED, PaymentStatus.DECLINED, PaymentStatus.FAILED):
            return self
        if self.status is not PaymentStatus.AUTHORIZED:
            raise self._state_error("void")
        return dataclasses.replace(self, status=PaymentStatus.VOIDED, updated_at_us=now_us)

    def refund(self, amount: Money | None, now_us: int) -> tuple[Payment, Money]:
        """Refunds ``amount`` (everything left when ``None``): the new payment and the refund."""
        if self.status is not PaymentStatus.CAPTURED:
            raise self._state_error("refund")
        if amount is None:
            amount = Money(self.refundable_minor, self.amount.currency)
        if amount.currency != self.amount.currency:
            wrong = f"must be the payment's currency {self.amount.currency}"
            raise InvalidArgument([FieldViolation("amount.currency_code", wrong)])
        if amount.amount_minor > self.refundable_minor:
            raise FailedPrecondition(
                f"cannot refund {amount.amount_minor}: only {self.refundable_minor} is refundable"
            )
        refunded = self.refunded_minor + amount.amount_minor
        status = PaymentStatus.REFUNDED if refunded == self.captured_minor else self.status
        changed = dataclasses.replace(
            self, refunded_minor=refunded, status=status, updated_at_us=now_us
        )
        return changed, amount


@dataclass(frozen=True, slots=True)
class Refund:
    """One refund of a payment; ``requested`` is what was asked for (``None``: the rest)."""

    refund_id: str
    payment_id: str
    idempotency_key: str | None
    requested: Money | None
    amount: Money
    reason: str
    created_at_us: int


# --- commands ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizePayment(Validated):
    """Command: hold ``amount`` on ``card`` for ``order_id``, once per idempotency key."""

    idempotency_key: Annotated[str, Text(MAX_KEY)]
    order_id: Annotated[str, Text(MAX_ID)]
    amount: Money
    card: Card

    def check(self, v: Validator) -> None:
        self.amount.check(v, "amount")
        self.card.check(v)

    def matches(self, payment: Payment) -> bool:
        """Whether ``payment`` is what this command (a replay of its key) asked for."""
        return payment.order_id == self.order_id and payment.amount == self.amount


@dataclass(frozen=True, slots=True)
class CapturePayment(Validated):
    """Command: take the authorized amount."""

    payment_id: PaymentId


@dataclass(frozen=True, slots=True)
class VoidAuthorization(Validated):
    """Command: release an authorization that was not captured."""

    payment_id: PaymentId
    reason: Annotated[str, Text(MAX_REASON, required=False)]


@dataclass(frozen=True, slots=True)
class RefundPayment:
    """Command: give back ``amount`` (``None``: all that is left) of a captured payment."""

    payment_id: str
    amount: Money | None
    reason: str
    idempotency_key: str

    def validate(self) -> None:
        v = Validator()
        v.text(self.payment_id, "payment_id", max_len=MAX_ID)
        if self.amount is not None:
            self.amount.check(v, "amount")
        v.text(self.reason, "reason", max_len=MAX_REASON, required=False)
        v.text(self.idempotency_key, "idempotency_key", max_len=MAX_KEY, required=False)
        v.raise_if_any()

    def matches(self, refund: Refund) -> bool:
        """Whether ``refund`` (made with this command's key) is what this command asks for."""
        return refund.requested == self.amount


@dataclass(frozen=True, slots=True)
class GetPayment(Validated):
    """Query: one payment."""

    payment_id: PaymentId
