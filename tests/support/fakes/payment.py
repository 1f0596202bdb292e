"""A fake unit of work for payment's handlers, and a processor that answers as told."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.payment.domain import Card, Money, Payment, PaymentStatus, ProcessorResult, Refund
from tests.support.fakes import FakeOutbox, FakeRepository, FakeTx, FakeUnitOfWork


@dataclass
class PaymentState:
    payments: dict[str, Payment] = field(default_factory=dict)
    refunds: list[Refund] = field(default_factory=list)


class FakePaymentStore(FakeRepository[PaymentState]):
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        return self._state.payments.get(payment_id)

    async def by_idempotency_key(self, key: str) -> Payment | None:
        found = (p for p in self._state.payments.values() if p.idempotency_key == key)
        return next(found, None)

    async def add(self, payment: Payment) -> bool:
        if await self.by_idempotency_key(payment.idempotency_key) is not None:
            return False
        self._state.payments[payment.payment_id] = payment
        return True

    async def save(self, payment: Payment) -> None:
        self._state.payments[payment.payment_id] = payment

    async def expired_authorizations(self, now_us: int, limit: int) -> list[Payment]:
        due = [
            p
            for p in self._state.payments.values()
            if p.status is PaymentStatus.AUTHORIZED and p.expires_at_us <= now_us
        ]
        return sorted(due, key=lambda p: p.expires_at_us)[:limit]

    async def refund_by_key(self, payment_id: str, key: str) -> Refund | None:
        found = (
            r
            for r in self._state.refunds
            if r.payment_id == payment_id and r.idempotency_key == key
        )
        return next(found, None)

    async def add_refund(self, refund: Refund) -> None:
        self._state.refunds.append(refund)


class FakePaymentTx(FakeTx):
    def __init__(self, state: PaymentState, outbox: FakeOutbox) -> None:
        super().__init__(outbox)
        self.payments = FakePaymentStore(state)


def fake_payment_uow() -> FakeUnitOfWork[PaymentState, FakePaymentTx]:
    return FakeUnitOfWork(PaymentState(), FakePaymentTx)


class ScriptedProcessor:
    """Answers every authorization with ``result``; counts the calls."""

    def __init__(self, result: ProcessorResult) -> None:
        self.result = result
        self.calls = 0

    async def authorize(self, card: Card, amount: Money) -> ProcessorResult:
        self.calls += 1
        return self.result
