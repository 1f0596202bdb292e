"""Payment's use cases: authorize, capture, void, refund, get.

Every state change and its event (to the ``payment`` stream) commit in one transaction.
The processor is called outside any transaction, bounded by ``processor_timeout``; when
the caller gives up first (its deadline fires, or it cancels), the attempt is still recorded
FAILED, so a replay with the same idempotency key answers at once and nothing is ever left
half-authorized. An authorization holds its amount for ``hold_seconds``; ``expire_due``
(the sweeper's pass) voids those whose hold ended, and capturing one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass, field

from services.payment import codec
from services.payment.domain import (
    EXPIRED_REASON,
    PROCESSOR_FAILED,
    AuthorizationExpired,
    AuthorizePayment,
    CapturePayment,
    GetPayment,
    Payment,
    PaymentStatus,
    ProcessorResult,
    Refund,
    RefundPayment,
    VoidAuthorization,
)
from services.payment.ports import PaymentTx, PaymentUnitOfWork
from services.payment.processor import Processor
from services.platform import auth
from services.platform.clock import now_us
from services.platform.errors import AlreadyExists, Conflict, NotFound
from services.platform.ids import random_id

log = logging.getLogger("emporium.payment")

#: The only service that may move money.
ORDER_SERVICE = "order"
#: How long an authorization holds its amount unless configured otherwise: 7 days.
DEFAULT_HOLD_SECONDS = 7 * 24 * 3600.0


def _replay(command: AuthorizePayment, earlier: Payment) -> Payment:
    if not command.matches(earlier):
        raise AlreadyExists("this idempotency key was already used for a different order or amount")
    return earlier


@dataclass(slots=True, eq=False)
class Payments:
    """The payment use cases over one database and one processor."""

    uow: PaymentUnitOfWork
    processor: Processor
    _: KW_ONLY
    processor_timeout: float = 5.0
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    clock: Callable[[], int] = now_us
    new_id: Callable[[], str] = random_id
    _recording: set[asyncio.Future[Payment]] = field(default_factory=set, init=False)

    @contextlib.asynccontextmanager
    async def _locked(self, payment_id: str) -> AsyncIterator[tuple[PaymentTx, Payment]]:
        """A write transaction and the payment's row in it, locked (NOT_FOUND if none)."""
        async with self.uow.write() as tx:
            payment = await tx.payments.get(payment_id, for_update=True)
            if payment is None:
                raise NotFound("no such payment")
            yield tx, payment

    async def authorize(self, command: AuthorizePayment) -> Payment:
        auth.require_service(ORDER_SERVICE)
        command.validate()
        async with self.uow.read() as tx:
            earlier = await tx.payments.by_idempotency_key(command.idempotency_key)
        if earlier is not None:
            return _replay(command, earlier)
        result = await self._ask_processor(command)
        return await self._record(command, result)

    async def _ask_processor(self, command: AuthorizePayment) -> ProcessorResult:
        try:
            async with asyncio.timeout(self.processor_timeout):
                return await self.processor.authorize(command.card, command.amount)
        except TimeoutError:
            log.warning("processor timed out", extra={"order_id": command.order_id})
            return PROCESSOR_FAILED
        except asyncio.CancelledError:
            # The caller gave up (deadline, cancellation, shutdown). Record the attempt as
            # FAILED anyway, shielded from the cancellation, before letting it propagate.
            recording = asyncio.ensure_future(self._record(command, PROCESSOR_FAILED))
            self._recording.add(recording)
            recording.add_done_callback(self._recording.discard)
            with contextlib.suppress(Exception):
                await asyncio.shield(recording)
            raise
        except Exception:
            log.exception("processor error", extra={"order_id": command.order_id})
            return PROCESSOR_FAILED

    async def _record(self, command: AuthorizePayment, result: ProcessorResult) -> Payment:
        now = self.clock()
        payment = Payment(
            payment_id=self.new_id(),
            idempotency_key=command.idempotency_key,
            order_id=command.order_id,
            amount=command.amount,
            status=result.status,
            decline_reason=result.decline_reason,
            card_last4=command.card.last4,
            captured_minor=0,
            refunded_minor=0,
            created_at_us=now,
            updated_at_us=now,
            expires_at_us=now + int(self.hold_seconds * 1_000_000),
        )
        async with self.uow.write() as tx:
            repository = tx.payments
            if not await repository.add(payment):  # a concurrent call with this key won
                earlier = await repository.by_idempotency_key(command.idempotency_key)
                if earlier is None:
                    raise Conflict("could not record the payment; retry")
                return _replay(command, earlier)
            event = (
                codec.authorized(payment)
                if payment.status is PaymentStatus.AUTHORIZED
                else codec.declined(payment)
            )
            await tx.outbox.record(event, payment.payment_id)
        return payment

    async def capture(self, command: CapturePayment) -> Payment:
        auth.require_service(ORDER_SERVICE)
        command.validate()
        async with self._locked(command.payment_id) as (tx, payment):
            now = self.clock()
            if payment.expired(now):
                # Release the hold now rather than at the next sweep, then refuse.
                await self._void(tx, payment.void(now), EXPIRED_REASON)
                captured = None
            else:
                captured = payment.capture(now)
                if captured is payment:
                    return payment
                await tx.payments.save(captured)
                event = codec.captured(captured)
                await tx.outbox.record(event, captured.payment_id)
        if captured is None:
            raise AuthorizationExpired()
        return captured

    async def expire_due(self, limit: int) -> int:
        """Voids up to ``limit`` authorizations whose hold ended; how many were due."""
        async with self.uow.write() as tx:
            now = self.clock()
            due = await tx.payments.expired_authorizations(now, limit)
            for payment in due:
                await self._void(tx, payment.void(now), EXPIRED_REASON)
        if due:
            log.info("voided expired authorizations", extra={"count": len(due)})
        return len(due)

    @staticmethod
    async def _void(tx: PaymentTx, voided: Payment, reason: str) -> None:
        await tx.payments.save(voided)
        await tx.outbox.record(codec.voided(voided, reason), voided.payment_id)

    async def void(self, command: VoidAuthorization) -> Payment:
        auth.require_service(ORDER_SERVICE)
        command.validate()
        async with self._locked(command.payment_id) as (tx, payment):
            voided = payment.void(self.clock())
            if voided is payment:
                return payment
            await self._void(tx, voided, command.reason)
        return voided

    async def refund(self, command: RefundPayment) -> Payment:
        auth.require_service(ORDER_SERVICE)
        command.validate()
        key = command.idempotency_key or None
        async with self._locked(command.payment_id) as (tx, payment):
            repository = tx.payments
            if key is not None:
                earlier = await repository.refund_by_key(payment.payment_id, key)
                if earlier is not None:
                    if not command.matches(earlier):
                        raise AlreadyExists(
                            "this idempotency key was already used for a different refund amount"
                        )
                    return payment
            now = self.clock()
            refunded, amount = payment.refund(command.amount, now)
            await repository.save(refunded)
            await repository.add_refund(
                Refund(
                    refund_id=self.new_id(),
                    payment_id=payment.payment_id,
                    idempotency_key=key,
                    requested=command.amount,
                    amount=amount,
                    reason=command.reason,
                    created_at_us=now,
                )
            )
            event = codec.refunded(refunded, amount, command.reason)
            await tx.outbox.record(event, refunded.payment_id)
        return refunded

    async def get(self, query: GetPayment) -> Payment:
        if not auth.current_caller().is_admin:
            auth.require_service(ORDER_SERVICE)
        query.validate()
        async with self.uow.read() as tx:
            payment = await tx.payments.get(query.payment_id)
        if payment is None:
            raise NotFound("no such payment")
        return payment
