"""The circuit breaker and bulkhead: the state machine on a fake clock, then over real gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc import aio

from services.platform.clients import open_channel
from services.platform.config import Settings, load_settings
from services.platform.metrics import Metrics
from services.platform.resilience import (
    BreakerState,
    Bulkhead,
    CircuitBreaker,
    guard,
    retry_after,
)

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


# -- Over gRPC -------------------------------------------------------------------------------

UNARY = "/test.Flaky/Call"
STREAM = "/test.Flaky/Watch"


@dataclass
class Flaky:
    """A tiny server whose answer the test sets; it counts the calls that reach it."""

    code: grpc.StatusCode = OK
    calls: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    hold: bool = False

    async def unary(self, request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        self.calls += 1
        if self.hold:
            await self.gate.wait()
        if self.code is not OK:
            await context.abort(self.code, "told to fail")
        return b"ok"

    async def stream(
        self, request: bytes, context: aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        self.calls += 1
        if self.code is not OK:
            await context.abort(self.code, "told to fail")
        for item in (b"a", b"b"):
            yield item


@dataclass
class Client:
    flaky: Flaky
    channel: aio.Channel
    metrics: Metrics
    clock: FakeClock

    async def unary(self) -> grpc.StatusCode:
        try:
            await self.channel.unary_unary(UNARY)(b"x")
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
        return OK

    async def stream(self) -> grpc.StatusCode:
        try:
            async for _ in self.channel.unary_stream(STREAM)(b"x"):
                pass
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            return code
        return OK

    def sample(self, name: str, **labels: str) -> float | None:
        value: float | None = self.metrics.registry.get_sample_value(
            name, {"downstream": "flaky", **labels}
        )
        return value


def settings(threshold: int = 3, reset: int = 10, concurrent: int = 2) -> Settings:
    return load_settings(
        "order",
        {
            "BREAKER_FAILURE_THRESHOLD": str(threshold),
            "BREAKER_RESET_TIMEOUT_SECONDS": str(reset),
            "BULKHEAD_MAX_CONCURRENT": str(concurrent),
        },
    )


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    flaky = Flaky()
    server = aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Flaky",
                {
                    "Call": grpc.unary_unary_rpc_method_handler(flaky.unary),
                    "Watch": grpc.unary_stream_rpc_method_handler(flaky.stream),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    metrics, clock = Metrics("order"), FakeClock()
    channel = open_channel(
        f"127.0.0.1:{port}", interceptors=guard("flaky", settings(), metrics, clock=clock)
    )
    try:
        yield Client(flaky, channel, metrics, clock)
    finally:
        flaky.gate.set()
        await channel.close()
        await server.stop(0)


async def _settled(condition: object, attempts: int = 100) -> None:
    """Streaming outcomes are recorded just after the stream ends: wait a little for them."""
    for _ in range(attempts):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)


async def test_the_breaker_opens_on_failures_and_then_fails_fast_without_calling(
    client: Client,
) -> None:
    assert client.sample("emporium_circuit_breaker_state") == 0
    client.flaky.code = UNAVAILABLE
    assert [await client.unary() for _ in range(3)] == [UNAVAILABLE] * 3
    assert client.flaky.calls == 3
    assert client.sample("emporium_circuit_breaker_state") == 1

    client.flaky.code = OK  # recovered, but the breaker does not know yet
    assert [await client.unary() for _ in range(5)] == [UNAVAILABLE] * 5
    assert client.flaky.calls == 3
    rejected = client.sample("emporium_client_rejected_total", reason="circuit_open")
    assert rejected == 5

    client.clock.advance(10)
    assert await client.unary() == OK  # the half-open probe
    assert client.flaky.calls == 4
    assert client.sample("emporium_circuit_breaker_state") == 0
    assert await client.unary() == OK
    opened = client.sample(
        "emporium_circuit_breaker_transitions_total", from_state="closed", to_state="open"
    )
    closed = client.sample(
        "emporium_circuit_breaker_transitions_total", from_state="half_open", to_state="closed"
    )
    assert opened == closed == 1


async def test_a_call_refused_by_the_open_breaker_carries_its_retry_after(
    client: Client,
) -> None:
    client.flaky.code = UNAVAILABLE
    for _ in range(3):
        await client.unary()
    client.clock.advance(4)
    with pytest.raises(aio.AioRpcError) as refused:
        await client.channel.unary_unary(UNARY)(b"x")
    assert refused.value.code() == UNAVAILABLE
    assert retry_after(refused.value) == 6
    client.flaky.code = grpc.StatusCode.INTERNAL
    client.clock.advance(6)
    with pytest.raises(aio.AioRpcError) as failed:  # the probe reaches the server
        await client.channel.unary_unary(UNARY)(b"x")
    assert retry_after(failed.value) is None


async def test_business_errors_keep_the_breaker_closed(client: Client) -> None:
    client.flaky.code = grpc.StatusCode.NOT_FOUND
    assert [await client.unary() for _ in range(6)] == [grpc.StatusCode.NOT_FOUND] * 6
    assert client.flaky.calls == 6
    assert client.sample("emporium_circuit_breaker_state") == 0


async def test_the_bulkhead_fails_excess_concurrent_calls_fast(client: Client) -> None:
    client.flaky.hold = True
    held = [asyncio.create_task(client.unary()) for _ in range(2)]
    for _ in range(100):
        if client.flaky.calls == 2:
            break
        await asyncio.sleep(0.01)
    assert await client.unary() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.flaky.calls == 2
    assert client.sample("emporium_client_rejected_total", reason="bulkhead_full") == 1

    client.flaky.gate.set()
    assert await asyncio.gather(*held) == [OK, OK]
    assert await client.unary() == OK  # the slots were given back
    assert client.sample("emporium_circuit_breaker_state") == 0  # overload is not a failure


async def test_streaming_calls_are_guarded_too(client: Client) -> None:
    assert await client.stream() == OK
    client.flaky.code = UNAVAILABLE
    for _ in range(3):
        assert await client.stream() == UNAVAILABLE
    await _settled(lambda: client.sample("emporium_circuit_breaker_state") == 1)
    assert client.sample("emporium_circuit_breaker_state") == 1
    assert await client.stream() == UNAVAILABLE
    assert client.flaky.calls == 4

    client.flaky.code = OK
    client.clock.advance(10)
    assert await client.stream() == OK
    await _settled(lambda: client.sample("emporium_circuit_breaker_state") == 0)
    assert client.sample("emporium_circuit_breaker_state") == 0


async def test_a_stream_gives_its_bulkhead_slot_back_when_it_ends(client: Client) -> None:
    for _ in range(5):  # more streams than slots, one after another
        assert await client.stream() == OK
    assert client.flaky.calls == 5


def test_one_guard_per_downstream_and_metrics() -> None:
    metrics = Metrics("order")
    first = guard("inventory", settings(), metrics)
    assert guard("inventory", settings(), metrics) == first
    assert guard("catalog", settings(), metrics) != first
    assert guard("inventory", settings(), None) != first
    assert [type(i.gate).__name__ for i in first] == ["BulkheadGate"] * 2 + ["BreakerGate"] * 2  # type: ignore[attr-defined]
