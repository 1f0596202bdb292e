"""What payment's handlers need from storage (fakes in tests/support/fakes/payment.py)."""

from __future__ import annotations

from typing import Protocol

from services.payment.domain import Payment, Refund
from services.platform.uow import Tx, UnitOfWork


class PaymentStore(Protocol):
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        """One payment; ``for_update`` locks its row until the transaction ends."""

    async def by_idempotency_key(self, key: str) -> Payment | None: ...

    async def add(self, payment: Payment) -> bool:
        """Inserts ``payment``; False when its idempotency key is taken (a concurrent twin)."""

    async def save(self, payment: Payment) -> None:
        """Writes a payment's state (status, amounts captured and refunded, times)."""

    async def expired_authorizations(self, now_us: int, limit: int) -> list[Payment]:
        """Up to ``limit`` authorizations whose hold ended, locked for this transaction."""

    async def refund_by_key(self, payment_id: str, key: str) -> Refund | None: ...

    async def add_refund(self, refund: Refund) -> None: ...


class PaymentTx(Tx, Protocol):
    @property
    def payments(self) -> PaymentStore: ...


PaymentUnitOfWork = UnitOfWork[PaymentTx]
