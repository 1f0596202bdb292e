"""A channel's client middlewares over real gRPC: what they add reaches the server, a refusal
stops the call before it leaves, and every admitted call's final code comes back to them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc import aio

from services.platform import telemetry
from services.platform.clients import ClientMiddleware, Outgoing, Settle, open_channel
from tests.support.servers import serve_probe

UNARY = "/test.Echo/Call"
STREAM = "/test.Echo/Watch"


@dataclass
class Echo:
    """Answers with the metadata and the time left that reached it (JSON), or fails."""

    code: grpc.StatusCode = grpc.StatusCode.OK
    calls: int = 0

    def _seen(self, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        metadata = [[k, v] for k, v in context.invocation_metadata() or () if isinstance(v, str)]
        return json.dumps({"metadata": metadata, "left": context.time_remaining()}).encode()

    async def unary(self, request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        self.calls += 1
        if self.code is not grpc.StatusCode.OK:
            await context.abort(self.code, "told to fail")
        return self._seen(context)

    async def stream(
        self, request: bytes, context: aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        self.calls += 1
        yield self._seen(context)
        if self.code is not grpc.StatusCode.OK:
            await context.abort(self.code, "told to fail")


@dataclass
class Recorder(ClientMiddleware):
    """Adds ``name: call.method``; remembers the codes it is told."""

    name: str
    codes: list[grpc.StatusCode] = field(default_factory=list)

    async def on_start(self, call: Outgoing) -> Settle:
        call.metadata.append((self.name, call.method))
        return self.codes.append


class Refuse(ClientMiddleware):
    async def on_start(self, call: Outgoing) -> Settle | None:
        raise aio.AioRpcError(
            grpc.StatusCode.RESOURCE_EXHAUSTED, aio.Metadata(), aio.Metadata(), details="no"
        )


async def _read_all(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for item in stream:
        into.append(item)


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Echo, str]]:
    echo = Echo()
    async with serve_probe("test.Echo", echo.unary, echo.stream) as target:
        yield echo, target


async def test_what_the_middlewares_add_and_the_trace_context_reach_the_server(
    echo: tuple[Echo, str],
) -> None:
    _, target = echo
    first, second = Recorder("x-first"), Recorder("x-second")
    channel = open_channel(target, default_timeout=3.0, middlewares=[first, second])
    try:
        parent = telemetry.unrecorded_span(None)
        with telemetry.unrecorded_trace(parent.get_span_context()):
            answer = await channel.unary_unary(UNARY)(b"x", metadata=(("x-caller", "mine"),))
            header = telemetry.traceparent()
    finally:
        await channel.close()

    seen = json.loads(answer)
    metadata = {k: v for k, v in seen["metadata"] if k.startswith(("x-", "traceparent"))}
    assert metadata == {
        "x-caller": "mine",
        "traceparent": header,
        "x-first": UNARY,
        "x-second": UNARY,
    }
    assert 0 < seen["left"] <= 3.0  # the channel's default deadline
    assert first.codes == second.codes == [grpc.StatusCode.OK]


async def test_a_refusal_stops_the_call_and_settles_the_middlewares_before_it(
    echo: tuple[Echo, str],
) -> None:
    server, target = echo
    before, after = Recorder("x-before"), Recorder("x-after")
    channel = open_channel(target, middlewares=[before, Refuse(), after])
    try:
        with pytest.raises(aio.AioRpcError) as refused:
            await channel.unary_unary(UNARY)(b"x")
    finally:
        await channel.close()

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.calls == 0
    assert before.codes == [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert after.codes == []  # never ran


async def test_each_call_settles_with_its_final_code_unary_and_streaming(
    echo: tuple[Echo, str],
) -> None:
    server, target = echo
    recorder = Recorder("x-r")
    channel = open_channel(target, middlewares=[recorder])
    try:
        server.code = grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(aio.AioRpcError):
            await channel.unary_unary(UNARY)(b"x")
        items: list[bytes] = []
        with pytest.raises(aio.AioRpcError):
            await _read_all(channel.unary_stream(STREAM)(b"x"), items)
        assert ["x-r", STREAM] in json.loads(items[0])["metadata"]
        for _ in range(100):  # a stream's code is read just after it ends
            if len(recorder.codes) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await channel.close()

    assert recorder.codes == [grpc.StatusCode.FAILED_PRECONDITION] * 2
