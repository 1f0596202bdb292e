"""The circuit breaker and bulkhead as state machines on a fake clock (over real gRPC:
tests/integration/test_resilience_over_grpc.py)."""

from __future__ import annotations

import grpc
import pytest

from services.platform.metrics import Metrics
from services.platform.resilience import (
    BreakerState,
    Bulkhead,
    CircuitBreaker,
    GateMiddleware,
    guard,
)
from tests.support.resilience import FakeClock, guard_settings

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def breaker(
    clock: FakeClock, transitions: list[tuple[BreakerState, BreakerState]] | None = None
) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3,
        reset_timeout=10.0,
        clock=clock,
        on_transition=None if transitions is None else lambda a, b: transitions.append((a, b)),
    )


def call(subject: CircuitBreaker, code: grpc.StatusCode) -> bool:
    """One call through the breaker; whether it was let through."""
    permit = subject.acquire()
    if permit is None:
        return False
    subject.record(permit, code)
    return True


# -- The state machine -----------------------------------------------------------------------


def test_the_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    transitions: list[tuple[BreakerState, BreakerState]] = []
    subject = breaker(FakeClock(), transitions)
    for _ in range(2):
        assert call(subject, UNAVAILABLE)
    assert subject.state is BreakerState.CLOSED
    assert call(subject, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert subject.state is BreakerState.OPEN
    assert subject.acquire() is None
    assert transitions == [(BreakerState.CLOSED, BreakerState.OPEN)]


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    ],
)
def test_each_failure_code_counts(code: grpc.StatusCode) -> None:
    subject = breaker(FakeClock())
    for _ in range(3):
        call(subject, code)
    assert subject.state is BreakerState.OPEN


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    subject = breaker(FakeClock())
    for code in (UNAVAILABLE, UNAVAILABLE, OK, UNAVAILABLE, UNAVAILABLE):
        assert call(subject, code)
    assert subject.state is BreakerState.CLOSED
    assert subject.consecutive_failures == 2


def test_business_errors_and_cancellations_do_not_count_as_failures() -> None:
    subject = breaker(FakeClock())
    answers = [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.CANCELLED,
    ]
    for code in answers * 3:
        assert call(subject, code)
    assert subject.state is BreakerState.CLOSED
    assert subject.consecutive_failures == 0


def test_an_open_breaker_half_opens_after_the_reset_timeout_and_lets_one_probe_through() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        call(subject, UNAVAILABLE)
    clock.advance(9.9)
    assert subject.acquire() is None
    clock.advance(0.1)
    probe = subject.acquire()
    assert probe is not None
    assert probe.probe
    assert subject.state is BreakerState.HALF_OPEN
    assert subject.acquire() is None  # only one probe at a time


def test_the_breaker_tells_refused_callers_how_long_until_its_probe() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    assert subject.retry_after() == 0
    for _ in range(3):
        call(subject, UNAVAILABLE)
    assert subject.retry_after() == 10
    clock.advance(7.5)
    assert subject.retry_after() == 2.5
    clock.advance(2.5)
    assert subject.acquire() is not None  # the probe is out: others wait a short while
    assert 0 < subject.retry_after() <= 1


def test_a_successful_probe_closes_the_breaker() -> None:
    clock = FakeClock()
    transitions: list[tuple[BreakerState, BreakerState]] = []
    subject = breaker(clock, transitions)
    for _ in range(3):
        call(subject, UNAVAILABLE)
    clock.advance(10)
    assert call(subject, OK)
    assert subject.state is BreakerState.CLOSED
    assert call(subject, OK)
    assert call(subject, OK)
    assert transitions == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_a_failed_probe_opens_the_breaker_for_another_reset_timeout() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        call(subject, UNAVAILABLE)
    clock.advance(10)
    assert call(subject, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert subject.state is BreakerState.OPEN
    clock.advance(9)
    assert subject.acquire() is None
    clock.advance(1)
    assert subject.acquire() is not None


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        call(subject, UNAVAILABLE)
    clock.advance(10)
    assert call(subject, grpc.StatusCode.CANCELLED)
    assert subject.state is BreakerState.HALF_OPEN
    assert call(subject, OK)
    assert subject.state is BreakerState.CLOSED


def test_late_results_of_calls_admitted_before_the_breaker_opened_are_ignored() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    slow = subject.acquire()
    assert slow is not None
    for _ in range(3):
        call(subject, UNAVAILABLE)
    clock.advance(10)
    probe = subject.acquire()
    assert probe is not None
    subject.record(slow, OK)  # began while closed: says nothing about the probe
    assert subject.state is BreakerState.HALF_OPEN
    subject.record(probe, UNAVAILABLE)
    assert subject.state is BreakerState.OPEN


def test_the_bulkhead_admits_at_most_max_concurrent_calls() -> None:
    bulkhead = Bulkhead(2)
    assert bulkhead.try_acquire()
    assert bulkhead.try_acquire()
    assert not bulkhead.try_acquire()
    bulkhead.release()
    assert bulkhead.try_acquire()
    assert bulkhead.in_flight == 2


def test_one_guard_per_downstream_and_metrics() -> None:
    metrics = Metrics("order")
    first = guard("inventory", guard_settings(), metrics)
    assert guard("inventory", guard_settings(), metrics) == first
    assert guard("catalog", guard_settings(), metrics) != first
    assert guard("inventory", guard_settings(), None) != first
    gates = [m.gate for m in first if isinstance(m, GateMiddleware)]
    assert [type(gate).__name__ for gate in gates] == ["BulkheadGate", "BreakerGate"]
