"""A streaming handler that gRPC abandons mid-stream (its call cancelled while a message
was being sent) is closed later by the event loop's finalizer, in another context than the
one the call ran in. Ending its trace scope there must be quiet: the call's context went
with its task, and an error logged for every cancelled watch stream is noise (and a cost)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import grpc
import pytest

from services.platform import telemetry
from services.platform.pipeline import CallInfo, Middleware, Pipeline


class _Context:
    """What the pipeline asks of a servicer context on the happy path."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),)

    def time_remaining(self) -> float | None:
        return None

    def code(self) -> grpc.StatusCode | None:
        return None


class _Ends(Middleware):
    def __init__(self) -> None:
        self.codes: list[grpc.StatusCode] = []

    def on_end(self, call: CallInfo, code: grpc.StatusCode, seconds: float) -> None:
        self.codes.append(code)


async def _two_messages(request: Any, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    yield b"second"


@pytest.mark.parametrize("closing_context", ["empty", "a copy of the call's"])
async def test_a_stream_closed_from_another_context_ends_cancelled_and_logs_no_error(
    caplog: pytest.LogCaptureFixture, closing_context: str
) -> None:
    ends = _Ends()
    behavior = Pipeline([ends])._streaming("/emporium.test.v1.Probe/Watch", _two_messages)
    stream = cast(AsyncGenerator[bytes, None], behavior(b"", cast(Any, _Context())))
    trace_ids: list[str] = []
    copies: list[contextvars.Context] = []

    async def first_message() -> None:
        assert await anext(stream) == b"first"
        trace_ids.append(telemetry.traceparent() or "")
        # The finalizer's task copies the context it is created in: the call's own, the
        # span current in it.
        copies.append(contextvars.copy_context())

    await asyncio.create_task(first_message())
    caplog.set_level(logging.ERROR)
    closing = contextvars.Context() if closing_context == "empty" else copies[0]
    await asyncio.create_task(stream.aclose(), context=closing)
    assert ends.codes == [grpc.StatusCode.CANCELLED]
    assert trace_ids[0].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert telemetry.traceparent() is None  # nothing leaked into this context either
