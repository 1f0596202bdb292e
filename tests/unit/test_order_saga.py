"""The order saga against fake inventory, payment and store (no I/O)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pytest

from services.order.domain import Card, Money
from services.order.ports import Authorization, LeaseLost, Reservation, SkuLine, StepFailed
from services.order.saga import (
    CancelRequested,
    Halted,
    Outcome,
    RetryPolicy,
    Saga,
    SagaState,
    Step,
)

CARD = Card("4242424242424242", 12, 2030, "123", "Ada")
DECLINED = Card("4000000000000002", 12, 2030, "123", "Ada")
FAST = RetryPolicy(budget_seconds=0.2, base_delay=0.001, max_delay=0.005)


def _unavailable(service: str) -> StepFailed:
    return StepFailed(f"{service} UNAVAILABLE", transient=True, code="UNAVAILABLE")


@dataclass
class FakeStore:
    """Sagas and order outcomes in memory, with the real store's cancel semantics and its
    compare-and-set on the version."""

    sagas: dict[str, SagaState] = field(default_factory=dict)
    outcomes: dict[str, tuple[Outcome, str]] = field(default_factory=dict)
    saved_steps: list[Step] = field(default_factory=list)
    cancels: dict[str, str] = field(default_factory=dict)

    def add(self, state: SagaState) -> None:
        self.sagas[state.order_id] = state

    def request_cancel(self, order_id: str, reason: str) -> None:
        self.cancels[order_id] = reason

    async def load(self, order_id: str) -> SagaState | None:
        state = self.sagas.get(order_id)
        if state is None or order_id in self.outcomes:
            return None
        return replace(state, cancel_reason=self.cancels.get(order_id))

    def _check(self, state: SagaState) -> None:
        if self.sagas[state.order_id].version != state.version:
            raise LeaseLost(state.order_id)

    def adopt(self, order_id: str) -> None:
        """Another instance takes the saga over (its version moves on)."""
        state = self.sagas[order_id]
        self.sagas[order_id] = replace(state, version=state.version + 1)

    async def save(self, state: SagaState) -> SagaState:
        self._check(state)
        state = replace(state, version=state.version + 1)
        self.sagas[state.order_id] = state
        self.saved_steps.append(state.step)
        return replace(state, cancel_reason=self.cancels.get(state.order_id))

    async def finish(self, state: SagaState) -> None:
        assert state.outcome is not None
        self._check(state)
        if state.outcome is Outcome.CONFIRMED and state.order_id in self.cancels:
            raise CancelRequested(self.cancels[state.order_id])
        self.outcomes[state.order_id] = (state.outcome, state.reason)
        self.sagas[state.order_id] = replace(state, card=None)


@dataclass
class FakeInventory:
    stock: dict[str, int]
    reservations: dict[str, str] = field(default_factory=dict)  # order -> status
    failures: dict[str, list[StepFailed]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    on_call: Callable[[str], None] | None = None
    held: dict[str, Sequence[SkuLine]] = field(default_factory=dict)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.on_call is not None:
            self.on_call(method)
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    async def reserve(self, order_id: str, lines: Sequence[SkuLine]) -> Reservation:
        self._enter("reserve")
        if order_id in self.reservations:
            return Reservation(True)
        short = tuple(sku for sku, qty in lines if self.stock.get(sku, 0) < qty)
        if short:
            return Reservation(False, short)
        for sku, qty in lines:
            self.stock[sku] -= qty
        self.reservations[order_id] = "reserved"
        self.held[order_id] = lines
        return Reservation(True)

    async def release(self, order_id: str, reason: str) -> None:
        self._enter("release")
        if self.reservations.get(order_id) in ("reserved", "committed"):
            for sku, qty in self.held[order_id]:
                self.stock[sku] += qty
            self.reservations[order_id] = "released"

    async def commit(self, order_id: str) -> None:
        self._enter("commit")
        self.reservations[order_id] = "committed"


@dataclass
class FakePayments:
    payments: dict[str, str] = field(default_factory=dict)  # payment id -> status
    by_key: dict[str, Authorization] = field(default_factory=dict)
    failures: dict[str, list[StepFailed]] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)
    on_call: Callable[[str], None] | None = None

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.on_call is not None:
            self.on_call(method)
        if self.down:
            raise _unavailable("payment")
        pending = self.failures.get(method)
        if pending:
            raise pending.pop(0)

    async def authorize(self, key: str, order_id: str, amount: Money, card: Card) -> Authorization:
        self._enter("authorize")
        if key not in self.by_key:
            payment_id = f"pay-{len(self.payments) + 1}"
            approved = card.number != DECLINED.number
            self.payments[payment_id] = "authorized" if approved else "declined"
            self.by_key[key] = Authorization(
                payment_id, approved, "" if approved else "card declined"
            )
        return self.by_key[key]

    async def capture(self, payment_id: str) -> None:
        self._enter("capture")
        self.payments[payment_id] = "captured"

    async def void(self, payment_id: str, reason: str) -> None:
        self._enter("void")
        if self.payments[payment_id] == "captured":
            raise StepFailed(
                "payment FAILED_PRECONDITION", transient=False, code="FAILED_PRECONDITION"
            )
        self.payments[payment_id] = "voided"

    async def refund(self, payment_id: str, reason: str, idempotency_key: str) -> None:
        self._enter("refund")
        self.payments[payment_id] = "refunded"


@dataclass
class World:
    store: FakeStore
    inventory: FakeInventory
    payments: FakePayments
    saga: Saga
    ended: list[Outcome]


def _state(order_id: str = "o-1", card: Card = CARD, qty: int = 2, **kw: object) -> SagaState:
    return SagaState(
        order_id=order_id,
        lines=(("SKU-1", qty),),
        total=Money(2500, "EUR"),
        card=card,
        step=Step.RESERVE,
        started_at_us=time.time_ns() // 1000,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def world() -> World:
    store, inventory, payments = FakeStore(), FakeInventory({"SKU-1": 5}), FakePayments()
    ended: list[Outcome] = []
    saga = Saga(
        store,
        inventory,
        payments,
        policy=FAST,
        rng=random.Random(7),
        on_end=lambda outcome, _seconds: ended.append(outcome),
    )
    return World(store, inventory, payments, saga, ended)


async def test_the_happy_path_reserves_authorizes_then_commits_and_captures(world: World) -> None:
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CONFIRMED
    assert world.store.outcomes["o-1"] == (Outcome.CONFIRMED, "")
    assert world.inventory.reservations["o-1"] == "committed"
    assert world.inventory.stock["SKU-1"] == 3
    assert list(world.payments.payments.values()) == ["captured"]
    assert world.store.saved_steps == [Step.AUTHORIZE, Step.COMPLETE]
    assert world.store.sagas["o-1"].card is None
    assert world.ended == [Outcome.CONFIRMED]


async def test_out_of_stock_rejects_without_touching_payment(world: World) -> None:
    world.store.add(_state(qty=9))
    assert await world.saga.run("o-1") is Outcome.REJECTED
    assert world.store.outcomes["o-1"] == (Outcome.REJECTED, "out of stock: SKU-1")
    assert world.payments.calls == []
    assert world.inventory.stock["SKU-1"] == 5


async def test_a_declined_card_releases_the_reservation_and_rejects(world: World) -> None:
    world.store.add(_state(card=DECLINED))
    assert await world.saga.run("o-1") is Outcome.REJECTED
    assert world.store.outcomes["o-1"] == (Outcome.REJECTED, "payment declined: card declined")
    assert world.inventory.reservations["o-1"] == "released"
    assert world.inventory.stock["SKU-1"] == 5
    assert "capture" not in world.payments.calls
    assert world.store.sagas["o-1"].payment_id == "pay-1"  # the declined payment is reported


async def test_a_transient_failure_is_retried_until_the_step_succeeds(world: World) -> None:
    world.inventory.failures["reserve"] = [_unavailable("inventory"), _unavailable("inventory")]
    world.payments.failures["capture"] = [_unavailable("payment")]
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CONFIRMED
    assert world.inventory.calls.count("reserve") == 3
    assert world.payments.calls.count("capture") == 2
    assert world.inventory.stock["SKU-1"] == 3


async def test_an_exhausted_budget_compensates_what_was_done_and_captures_nothing(
    world: World,
) -> None:
    world.inventory.failures["commit"] = [_unavailable("inventory")] * 1000
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.REJECTED
    _, reason = world.store.outcomes["o-1"]
    assert reason == "could not commit the stock and capture the payment: inventory UNAVAILABLE"
    assert world.inventory.reservations["o-1"] == "released"
    assert world.inventory.stock["SKU-1"] == 5
    # Nothing is captured while the commit fails: the compensation voids the authorization.
    assert "capture" not in world.payments.calls
    assert list(world.payments.payments.values()) == ["voided"]


async def test_payment_down_past_the_budget_rejects_and_releases_the_stock(world: World) -> None:
    world.payments.down = True
    world.store.add(_state())
    started = time.monotonic()
    assert await world.saga.run("o-1") is Outcome.REJECTED
    assert time.monotonic() - started < 2
    assert world.store.outcomes["o-1"][1] == "could not authorize the payment: payment UNAVAILABLE"
    assert world.inventory.reservations["o-1"] == "released"
    assert world.inventory.stock["SKU-1"] == 5


async def test_an_in_doubt_authorization_is_looked_up_and_voided(world: World) -> None:
    # The first authorization happened but its answer was lost; then a non-retryable
    # failure stops the saga: the compensation must find and void that authorization.
    lost = StepFailed("payment DEADLINE_EXCEEDED", transient=True, code="DEADLINE_EXCEEDED")
    refused = StepFailed("payment INTERNAL", transient=False, code="INTERNAL")
    real_authorize = world.payments.authorize

    async def authorize_then_lose_answer(
        key: str, order_id: str, amount: Money, card: Card
    ) -> Authorization:
        await real_authorize(key, order_id, amount, card)
        world.payments.authorize = real_authorize  # type: ignore[method-assign]
        world.payments.failures["authorize"] = [refused]
        raise lost

    world.payments.authorize = authorize_then_lose_answer  # type: ignore[method-assign]
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.REJECTED
    assert world.payments.payments == {"pay-1": "voided"}
    assert world.inventory.stock["SKU-1"] == 5


async def test_a_cancellation_mid_saga_stops_and_compensates(world: World) -> None:
    def cancel_during_reserve(method: str) -> None:
        if method == "reserve":
            world.store.request_cancel("o-1", "changed my mind")

    world.inventory.on_call = cancel_during_reserve
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CANCELLED
    assert world.store.outcomes["o-1"] == (Outcome.CANCELLED, "changed my mind")
    assert world.payments.calls == []
    assert world.inventory.reservations["o-1"] == "released"
    assert world.inventory.stock["SKU-1"] == 5


async def test_a_cancellation_racing_the_confirmation_refunds_and_restocks(world: World) -> None:
    def cancel_during_capture(method: str) -> None:
        if method == "capture":
            world.store.request_cancel("o-1", "too slow")

    world.payments.on_call = cancel_during_capture
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CANCELLED
    assert world.payments.payments == {"pay-1": "refunded"}
    assert world.inventory.stock["SKU-1"] == 5


async def test_a_cancellation_wakes_a_saga_waiting_to_retry(world: World) -> None:
    slow = RetryPolicy(budget_seconds=60, base_delay=30, max_delay=30)
    saga = Saga(world.store, world.inventory, world.payments, policy=slow)
    world.inventory.failures["reserve"] = [_unavailable("inventory")] * 10

    def cancel_soon(method: str) -> None:
        if method == "reserve":
            world.store.request_cancel("o-1", "never mind")
            asyncio.get_running_loop().call_later(0.05, saga.poke, "o-1")

    world.inventory.on_call = cancel_soon
    world.store.add(_state())
    started = time.monotonic()
    assert await saga.run("o-1") is Outcome.CANCELLED
    assert time.monotonic() - started < 5


async def test_a_resumed_saga_continues_from_its_saved_step(world: World) -> None:
    world.inventory.reservations["o-1"] = "reserved"
    world.inventory.held["o-1"] = (("SKU-1", 2),)
    world.payments.payments["pay-7"] = "authorized"
    world.store.add(replace(_state(), step=Step.COMPLETE, payment_id="pay-7", authorized=True))
    assert await world.saga.run("o-1", resumed=True) is Outcome.CONFIRMED
    assert world.inventory.calls == ["commit"]
    assert world.payments.payments == {"pay-7": "captured"}


async def test_cancelling_a_confirmed_order_refunds_and_restocks(world: World) -> None:
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CONFIRMED
    world.store.outcomes.clear()  # what CancelOrder's reopening does to the saga record
    confirmed = world.store.sagas["o-1"]
    world.store.add(
        replace(
            confirmed,
            step=Step.COMPENSATE,
            outcome=Outcome.CANCELLED,
            reason="order cancelled",
            compensate_from=Step.COMPLETE,
            captured=True,
        )
    )
    assert await world.saga.run("o-1") is Outcome.CANCELLED
    assert world.payments.payments == {"pay-1": "refunded"}
    assert world.inventory.stock["SKU-1"] == 5


async def test_an_ended_saga_does_not_run_again(world: World) -> None:
    world.store.add(_state())
    await world.saga.run("o-1")
    calls = list(world.inventory.calls)
    assert await world.saga.run("o-1") is None
    assert world.inventory.calls == calls


def test_backoff_grows_with_jitter_and_stays_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    delays = [policy.delay(attempt, policy.max_delay) for attempt in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert all(0.5 <= d <= 1.0 for d in delays[4:])
    assert len(set(delays)) == len(delays)


async def test_the_reservation_is_committed_before_the_payment_is_captured(world: World) -> None:
    order: list[str] = []
    world.inventory.on_call = order.append
    world.payments.on_call = order.append
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.CONFIRMED
    assert order[-2:] == ["commit", "capture"]


async def test_a_failed_commit_captures_nothing_and_voids_the_authorization(world: World) -> None:
    expired = StepFailed("reservation EXPIRED", transient=False, code="FAILED_PRECONDITION")
    world.inventory.failures["commit"] = [expired]
    world.store.add(_state())
    assert await world.saga.run("o-1") is Outcome.REJECTED
    assert "capture" not in world.payments.calls
    assert world.payments.payments == {"pay-1": "voided"}


async def test_a_run_whose_saga_was_adopted_elsewhere_stops_without_writing(
    world: World,
) -> None:
    def adopted_meanwhile(method: str) -> None:
        if method == "authorize":
            world.store.adopt("o-1")

    world.payments.on_call = adopted_meanwhile
    world.store.add(_state())
    with pytest.raises(LeaseLost):
        await world.saga.run("o-1")
    assert world.store.saved_steps == [Step.AUTHORIZE]  # nothing after the takeover
    assert "o-1" not in world.store.outcomes


async def test_a_halted_saga_starts_no_further_step(world: World) -> None:
    def halt_during_reserve(method: str) -> None:
        if method == "reserve":
            world.saga.halt()

    world.inventory.on_call = halt_during_reserve
    world.store.add(_state())
    with pytest.raises(Halted):
        await world.saga.run("o-1")
    assert world.store.saved_steps == [Step.AUTHORIZE]  # the reservation in flight was saved
    assert world.payments.calls == []


def test_outages_are_waited_out_for_minutes_and_the_reservation_outlives_them() -> None:
    policy = RetryPolicy()
    assert policy.budget_seconds >= 600
    # Authorize and commit may each take the whole budget after the reservation is made.
    assert policy.reservation_ttl_seconds() > 2 * policy.budget_seconds


async def test_an_open_breaker_is_waited_for_without_growing_the_backoff(world: World) -> None:
    # With a 30 s backoff, any growth would stall the test: refusals wait only for the probe.
    slow = RetryPolicy(budget_seconds=60, base_delay=30, max_delay=30)
    saga = Saga(world.store, world.inventory, world.payments, policy=slow)
    refused = StepFailed(
        "payment UNAVAILABLE", transient=True, code="UNAVAILABLE", retry_after=0.01
    )
    world.payments.failures["authorize"] = [refused] * 5
    world.store.add(_state())
    assert await asyncio.wait_for(saga.run("o-1"), 10) is Outcome.CONFIRMED
    assert world.payments.calls.count("authorize") == 6
