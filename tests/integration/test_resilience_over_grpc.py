"""The circuit breaker and bulkhead as client middlewares over real gRPC: a local server
whose answers the test sets (the state machine itself: tests/unit/test_resilience.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc import aio

from services.platform.clients import open_channel
from services.platform.metrics import Metrics
from services.platform.resilience import guard, retry_after
from tests.support.resilience import FakeClock, guard_settings
from tests.support.servers import serve_probe

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


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


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    flaky = Flaky()
    async with serve_probe("test.Flaky", flaky.unary, flaky.stream) as target:
        metrics, clock = Metrics("order"), FakeClock()
        channel = open_channel(
            target, middlewares=guard("flaky", guard_settings(), metrics, clock=clock)
        )
        try:
            yield Client(flaky, channel, metrics, clock)
        finally:
            flaky.gate.set()
            await channel.close()


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
