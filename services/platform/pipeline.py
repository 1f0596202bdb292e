"""The server-side interceptor chain: small middlewares in one ordered list.

Every RPC passes through :class:`Pipeline`. Each middleware sees the call start
(``on_start``, which may reject it by raising a domain error) and end (``on_end``, with
the final status code and duration). Domain errors raised by handlers become gRPC
statuses here, in one place; anything else becomes INTERNAL with no detail leaked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from services.platform import auth, deadlines, errors, status, telemetry

log = logging.getLogger("emporium.rpc")


@dataclass(slots=True)
class CallInfo:
    """What a middleware knows about the call in flight."""

    method: str
    metadata: dict[str, str]
    start: float = field(default_factory=time.perf_counter)

    @property
    def service_name(self) -> str:
        return self.method.rsplit("/", 2)[-2]

    @property
    def method_name(self) -> str:
        return self.method.rsplit("/", 1)[-1]


class Middleware:
    """Base class: override what you need."""

    async def on_start(self, call: CallInfo) -> None:
        """Runs before the handler; raise a :class:`DomainError` to reject the call."""

    def on_end(self, call: CallInfo, code: grpc.StatusCode, seconds: float) -> None:
        """Runs after the call has its final status."""


def _metadata(context: aio.ServicerContext[Any, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            found[key] = value
    return found


def _code_of(context: aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.OK


class _Run:
    """One call through the middlewares: start, then end with the code it got."""

    __slots__ = ("call", "code", "pipeline")

    def __init__(self, pipeline: Pipeline, call: CallInfo) -> None:
        self.pipeline = pipeline
        self.call = call
        self.code = grpc.StatusCode.OK

    async def start(self, context: aio.ServicerContext[Any, Any]) -> None:
        auth.set_caller(None)
        deadlines.set_remaining(context.time_remaining())
        for middleware in self.pipeline.starters:
            await middleware.on_start(self.call)

    async def fail(self, exc: BaseException, context: aio.ServicerContext[Any, Any]) -> None:
        """Turns ``exc`` into the call's status; always raises."""
        if isinstance(exc, errors.DomainError):
            self.code = status.code_of(exc)
            await context.abort_with_status(status.to_status(exc))
        if isinstance(exc, aio.AbortError):
            self.code = _code_of(context)
            raise exc
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        log.exception("unhandled error in %s", self.call.method, exc_info=exc)
        self.code = grpc.StatusCode.INTERNAL
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")  # pragma: no cover

    def end(self, context: aio.ServicerContext[Any, Any]) -> None:
        if self.code is grpc.StatusCode.OK:
            self.code = _code_of(context)
        seconds = time.perf_counter() - self.call.start
        for middleware in self.pipeline.enders:
            middleware.on_end(self.call, self.code, seconds)


Unary = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]
Streaming = Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


class Pipeline(aio.ServerInterceptor):
    """Runs ``middlewares`` in order around every handler (unary and streaming)."""

    def __init__(self, middlewares: Sequence[Middleware], *, tracing: bool = True) -> None:
        self.middlewares = list(middlewares)
        self.tracing = tracing
        self.starters = [m for m in self.middlewares if type(m).on_start is not Middleware.on_start]
        self.enders = [
            m for m in reversed(self.middlewares) if type(m).on_end is not Middleware.on_end
        ]
        self._cache: dict[str, Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method: str = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrap(method, handler)
        self._cache[method] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary), **kwargs
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream), **kwargs
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary), **kwargs
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(method, handler.stream_stream), **kwargs
        )

    def _span(self, run: _Run) -> AbstractContextManager[Any]:
        """The call's trace span (current while it runs), or nothing if tracing is off."""
        if not self.tracing:
            return nullcontext()
        return telemetry.server_span(run.call.method, run.call.metadata.get("traceparent"))

    def _unary(self, method: str, inner: Unary) -> Unary:
        async def behavior(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            run = _Run(self, CallInfo(method, _metadata(context)))
            with self._span(run) as span:
                try:
                    await run.start(context)
                    return await inner(request, context)
                except BaseException as exc:
                    await run.fail(exc, context)
                finally:
                    run.end(context)
                    telemetry.end_server_span(span, run.code)

        return behavior

    def _streaming(self, method: str, inner: Streaming) -> Streaming:
        async def behavior(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            run = _Run(self, CallInfo(method, _metadata(context)))
            with self._span(run) as span:
                try:
                    await run.start(context)
                    async for response in inner(request, context):
                        yield response
                except BaseException as exc:
                    if isinstance(exc, GeneratorExit):
                        run.code = grpc.StatusCode.CANCELLED
                        raise
                    await run.fail(exc, context)
                finally:
                    run.end(context)
                    telemetry.end_server_span(span, run.code)

        return behavior
