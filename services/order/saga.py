"""The order saga: an orchestrated, persisted process manager.

Forward steps: RESERVE (inventory) → AUTHORIZE (payment) → COMPLETE (commit the
reservation, then capture the payment) → the order is CONFIRMED. A refusal (out of stock,
declined card), a non-retryable failure, an exhausted retry budget or a cancellation turns
the saga to COMPENSATE: release the stock, void (or refund) the payment, then end the order
REJECTED or CANCELLED. The state is saved after every step, every step is idempotent by
order id, so a saga interrupted anywhere resumes safely. Every save is a compare-and-set on
the saga's version: a run whose instance lost the saga's lease fails its next write with
:class:`~services.order.ports.LeaseLost` and stops there (see docs/saga.md).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from services.order.domain import Card, Money
from services.order.ports import Inventory, Payments, SagaStore, SkuLine, StepFailed
from services.platform.clock import now_us
from services.platform.retry import backoff_delay

log = logging.getLogger("emporium.order.saga")


class Step(enum.Enum):
    RESERVE = "reserve"
    AUTHORIZE = "authorize"
    COMPLETE = "complete"
    COMPENSATE = "compensate"
    DONE = "done"


class Outcome(enum.Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


_ACTIONS = {
    Step.RESERVE: "reserve stock",
    Step.AUTHORIZE: "authorize the payment",
    Step.COMPLETE: "commit the stock and capture the payment",
}


@dataclass(frozen=True, slots=True)
class SagaState:
    """One saga as persisted (``resumed`` and ``doubtful`` live in memory only)."""

    order_id: str
    lines: tuple[SkuLine, ...]
    total: Money
    card: Card | None
    step: Step
    started_at_us: int
    attempts: int = 0
    retry_deadline_us: int | None = None
    payment_id: str = ""
    authorized: bool = False
    captured: bool = False
    outcome: Outcome | None = None
    reason: str = ""
    compensate_from: Step | None = None
    cancel_reason: str | None = None
    version: int = 0
    resumed: bool = False
    doubtful: bool = False


class Halted(Exception):
    """The instance is draining: the saga stops before its next step (its lease is released
    and another instance continues it)."""


class CancelRequested(Exception):
    """The order cannot be confirmed: its cancellation was requested meanwhile."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long outages are waited out: a forward step is retried with the platform's
    backoff for ``budget_seconds`` (minutes: a restart of a dependency must never reject an
    order) before the saga gives up and compensates; compensations are retried until done.
    A call refused by an open breaker waits for the breaker's probe instead."""

    budget_seconds: float = 600.0
    base_delay: float = 0.05
    max_delay: float = 2.0
    compensation_max_delay: float = 5.0

    def delay(self, attempt: int, cap: float) -> float:
        return backoff_delay(attempt, self.base_delay, cap)

    def reservation_ttl_seconds(self, margin: float = 300.0) -> int:
        """A reservation outlives the steps after it (authorize, then commit), each retried
        for at most the budget, plus a margin for backoff pauses and restarts."""
        return int(2 * self.budget_seconds + margin)


#: Jitter added to a breaker's retry-after, so waiting sagas do not all probe at once.
_PROBE_JITTER = 0.25


OnEnd = Callable[[Outcome, float], None]
#: Awaited before each forward step with the order id and the step (injected by tests at
#: the composition root, to hold a saga at a chosen step).
StepHook = Callable[[str, Step], Awaitable[None]]


class Saga:
    """Runs one order's saga from its saved step to its end."""

    def __init__(
        self,
        store: SagaStore,
        inventory: Inventory,
        payments: Payments,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], int] = now_us,
        on_end: OnEnd | None = None,
        rng: random.Random | None = None,
        before_step: StepHook | None = None,
    ) -> None:
        self._store = store
        self._inventory = inventory
        self._payments = payments
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._on_end = on_end
        self._rng = rng or random.Random()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._halted = False
        self._before_step = before_step

    def poke(self, order_id: str) -> None:
        """Ends a backoff pause early (a cancellation was requested)."""
        wakeup = self._wakeups.get(order_id)
        if wakeup is not None:
            wakeup.set()

    def halt(self) -> None:
        """Starts no more steps (a drain): every run raises :class:`Halted` before its next
        step; calls in flight finish, pauses end at once."""
        self._halted = True
        for wakeup in self._wakeups.values():
            wakeup.set()

    async def run(
        self, order_id: str, *, resumed: bool = False, state: SagaState | None = None
    ) -> Outcome | None:
        """Drives the saga (``state`` if just stored, else loaded) to its end, if unfinished."""
        state = state or await self._store.load(order_id)
        if state is None:
            return None
        current: SagaState | Outcome = replace(state, resumed=resumed)
        while isinstance(current, SagaState):
            if self._halted:
                raise Halted(order_id)
            current = await self._advance(current)
        return current

    async def _advance(self, state: SagaState) -> SagaState | Outcome:
        if state.step is Step.COMPENSATE:
            return await self._compensate(state)
        if self._before_step is not None:
            await self._before_step(state.order_id, state.step)
        if state.cancel_reason is not None:
            return await self._begin_compensation(state, Outcome.CANCELLED, state.cancel_reason)
        try:
            if state.step is Step.RESERVE:
                return await self._reserve(state)
            if state.step is Step.AUTHORIZE:
                return await self._authorize(state)
            return await self._complete(state)
        except StepFailed as failure:
            return await self._retry_or_compensate(state, failure)

    async def _reserve(self, state: SagaState) -> SagaState | Outcome:
        reservation = await self._inventory.reserve(state.order_id, state.lines)
        if not reservation.reserved:
            reason = "out of stock: " + ", ".join(reservation.unavailable_skus)
            return await self._end(state, Outcome.REJECTED, reason)  # nothing is held
        return await self._store.save(self._next(state, Step.AUTHORIZE))

    async def _authorize(self, state: SagaState) -> SagaState | Outcome:
        if state.card is None:  # wiped: only an ended saga lacks it
            return await self._begin_compensation(state, Outcome.REJECTED, "card details missing")
        authorization = await self._payments.authorize(
            f"{state.order_id}:authorize", state.order_id, state.total, state.card
        )
        if not authorization.approved:
            reason = f"payment declined: {authorization.decline_reason}"
            return await self._begin_compensation(
                replace(state, payment_id=authorization.payment_id), Outcome.REJECTED, reason
            )
        authorized = replace(state, payment_id=authorization.payment_id, authorized=True)
        return await self._store.save(self._next(authorized, Step.COMPLETE))

    async def _complete(self, state: SagaState) -> SagaState | Outcome:
        # Commit first, then capture: money is taken only for stock that is ours for good
        # (a reservation that expired meanwhile fails the commit, and nothing was captured).
        await self._inventory.commit(state.order_id)
        await self._payments.capture(state.payment_id)
        state = replace(state, captured=True)
        try:
            return await self._end(state, Outcome.CONFIRMED, "")
        except CancelRequested as cancel:
            # Completed just as a cancellation came in: honour it (refund and restock).
            return await self._begin_compensation(state, Outcome.CANCELLED, cancel.reason)

    async def _retry_or_compensate(
        self, state: SagaState, failure: StepFailed
    ) -> SagaState | Outcome:
        now = self._clock()
        deadline = state.retry_deadline_us or now + int(self._policy.budget_seconds * 1e6)
        if failure.transient and now < deadline:
            delay, attempts = self._wait_for(failure, state.attempts, self._policy.max_delay)
            log.info(
                "saga step failed, retrying",
                extra={"order_id": state.order_id, "step": state.step.value, "error": str(failure)},
            )
            await self._pause(state.order_id, min(delay, (deadline - now) / 1e6))
            return await self._store.save(
                replace(state, attempts=attempts, retry_deadline_us=deadline)
            )
        reason = f"could not {_ACTIONS[state.step]}: {failure}"
        return await self._begin_compensation(
            replace(state, doubtful=state.doubtful or failure.transient), Outcome.REJECTED, reason
        )

    async def _begin_compensation(
        self, state: SagaState, outcome: Outcome, reason: str
    ) -> SagaState:
        return await self._store.save(
            replace(
                state,
                step=Step.COMPENSATE,
                outcome=outcome,
                reason=reason,
                compensate_from=state.step,
                doubtful=state.doubtful or state.resumed or state.attempts > 0,
                attempts=0,
                retry_deadline_us=None,
            )
        )

    async def _compensate(self, state: SagaState) -> SagaState | Outcome:
        """Releases the stock and undoes the payment. Transient failures are retried until
        the compensations are done (they are idempotent); refusals are logged."""
        outcome = state.outcome
        assert outcome is not None
        now = self._clock()
        deadline = state.retry_deadline_us or now + int(self._policy.budget_seconds * 1e6)
        state = replace(state, retry_deadline_us=deadline)
        pending: StepFailed | None = None
        for undo in (self._release, self._undo_payment):
            try:
                await undo(state, now >= deadline)
            except StepFailed as failure:
                if failure.transient:
                    pending = failure
                else:
                    log.error(
                        "compensation refused",
                        extra={"order_id": state.order_id, "error": str(failure)},
                    )
        if pending is not None:
            cap = self._policy.compensation_max_delay
            delay, attempts = self._wait_for(pending, state.attempts, cap)
            await self._pause(state.order_id, delay)
            return await self._store.save(replace(state, attempts=attempts))
        return await self._end(state, outcome, state.reason)

    async def _release(self, state: SagaState, _past_budget: bool) -> None:
        await self._inventory.release(state.order_id, state.reason)

    async def _undo_payment(self, state: SagaState, past_budget: bool) -> None:
        payment_id = state.payment_id if state.authorized else ""
        in_doubt = state.compensate_from is Step.AUTHORIZE and (state.doubtful or state.resumed)
        if not payment_id and in_doubt and state.card is not None:
            # The authorization may have happened without us hearing the answer: replaying
            # it with the same key returns it (or makes one, which is voided just below).
            try:
                authorization = await self._payments.authorize(
                    f"{state.order_id}:authorize", state.order_id, state.total, state.card
                )
            except StepFailed as failure:
                if not (failure.transient and past_budget):
                    raise
                # Payment stays unreachable: an authorization we never heard of is never
                # captured and lapses at the processor.
                log.warning(
                    "gave up checking for an authorization", extra={"order_id": state.order_id}
                )
                return
            if authorization.approved:
                payment_id = authorization.payment_id
        if not payment_id:
            return
        if not state.captured:
            try:
                await self._payments.void(payment_id, state.reason)
                return
            except StepFailed as failure:
                if not failure.precondition_failed:  # already captured: refund it instead
                    raise
        await self._payments.refund(payment_id, state.reason, f"{state.order_id}:refund")

    async def _end(self, state: SagaState, outcome: Outcome, reason: str) -> Outcome:
        await self._store.finish(replace(state, outcome=outcome, reason=reason, step=Step.DONE))
        if self._on_end is not None:
            self._on_end(outcome, max(0.0, (self._clock() - state.started_at_us) / 1e6))
        return outcome

    def _wait_for(self, failure: StepFailed, attempts: int, cap: float) -> tuple[float, int]:
        """The pause before the next try and the attempt count after it. An open breaker's
        refusal waits for its probe and does not grow the backoff: it says nothing new
        about the downstream, and fast failures must not burn the budget in a tight loop."""
        if failure.retry_after is not None:
            return failure.retry_after + self._rng.uniform(0, _PROBE_JITTER), attempts
        return self._policy.delay(attempts, cap), attempts + 1

    @staticmethod
    def _next(state: SagaState, step: Step) -> SagaState:
        return replace(state, step=step, attempts=0, retry_deadline_us=None)

    async def _pause(self, order_id: str, seconds: float) -> None:
        if self._halted:
            return
        wakeup = self._wakeups.setdefault(order_id, asyncio.Event())
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass
        finally:
            self._wakeups.pop(order_id, None)
