"""Outgoing gRPC: one way to open a channel to another service.

Every call gets a deadline (the caller's remaining deadline when shorter), carries the
trace context (``traceparent``), and is retried by gRPC itself (gRFC A6 retry policy in the
service config) only for read-only methods and only on UNAVAILABLE, with exponential
backoff and jitter.

What else a channel does to its calls (a bearer token, the bulkhead and circuit breaker of
:mod:`services.platform.resilience`) are :class:`ClientMiddleware`: small steps in one
ordered list, run by one interceptor per arity, as the server runs its middlewares in one
:class:`~services.platform.pipeline.Pipeline`. (A grpc.aio interceptor per concern costs a
layer of coroutines, a copy of the call's details and metadata, and an await of the call
each: measured in the order service, the five it had took 9% of its CPU.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc import aio

from services.platform import deadlines, telemetry

DEFAULT_TIMEOUT = 5.0

#: Told an admitted call's final status code (CANCELLED when it never got one).
Settle = Callable[[grpc.StatusCode], None]
#: What an interceptor calls to make the call.
Continuation = Callable[[aio.ClientCallDetails, Any], Awaitable[Any]]


def service_config(retryable: Sequence[tuple[str, str]] = ()) -> str:
    """A service config retrying ``(service, method)`` pairs on UNAVAILABLE."""
    config: dict[str, Any] = {"methodConfig": []}
    if retryable:
        config["methodConfig"].append(
            {
                "name": [{"service": service, "method": method} for service, method in retryable],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        )
    return json.dumps(config)


class Outgoing:
    """One outgoing call as the middlewares see it: its method and the metadata they add."""

    __slots__ = ("metadata", "method")

    def __init__(self, method: str, metadata: list[tuple[str, str]]) -> None:
        self.method = method
        self.metadata = metadata


class ClientMiddleware:
    """Base class of one step of every outgoing call of a channel."""

    async def on_start(self, call: Outgoing) -> Settle | None:
        """Runs before the call: may add to ``call.metadata``, or refuse the call by raising
        an :class:`grpc.aio.AioRpcError`. What it returns is told the call's final code."""
        return None


def _settle(settles: Sequence[Settle], code: grpc.StatusCode) -> None:
    for settle in reversed(settles):
        settle(code)


class _Chain:
    """The middlewares of one channel, around each call of either arity."""

    def __init__(self, default_timeout: float, middlewares: Sequence[ClientMiddleware]) -> None:
        self._default = default_timeout
        self._middlewares = tuple(middlewares)

    async def start(
        self, continuation: Continuation, details: aio.ClientCallDetails, request: Any
    ) -> tuple[Any, list[Settle]]:
        """Runs the middlewares and starts the call; a refused call or one that failed to
        start is settled here."""
        method = details.method
        method = method.decode() if isinstance(method, bytes) else method
        added: list[tuple[str, str]] = []
        header = telemetry.traceparent()
        if header is not None:
            added.append(("traceparent", header))
        call = Outgoing(method, added)
        settles: list[Settle] = []
        try:
            for middleware in self._middlewares:
                settle = await middleware.on_start(call)
                if settle is not None:
                    settles.append(settle)
            given = details.metadata
            metadata = aio.Metadata(*(given if given is not None else ()), *added)
            timeout = deadlines.timeout_for(
                self._default if details.timeout is None else details.timeout
            )
            started = aio.ClientCallDetails(
                details.method, timeout, metadata, details.credentials, details.wait_for_ready
            )
            return await continuation(started, request), settles
        except aio.AioRpcError as error:  # refused by a middleware, or by gRPC
            _settle(settles, error.code())
            raise
        except BaseException:
            _settle(settles, grpc.StatusCode.CANCELLED)
            raise


class _Chained:
    def __init__(self, chain: _Chain) -> None:
        self._chain = chain


# grpc.aio files each interceptor under one call type, so unary and streaming calls each
# need their own object.
class _Unary(_Chained, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Continuation, details: aio.ClientCallDetails, request: Any
    ) -> Any:
        with telemetry.client_span(details.method):
            call, settles = await self._chain.start(continuation, details, request)
            if settles or telemetry.recording():
                code = grpc.StatusCode.CANCELLED
                try:
                    code = await call.code()
                finally:
                    _settle(settles, code)
        return call


#: Tasks reading the final code of finished streaming calls; kept so they are not collected.
_settling: set[asyncio.Task[grpc.StatusCode]] = set()


class _Stream(_Chained, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Continuation, details: aio.ClientCallDetails, request: Any
    ) -> Any:
        call, settles = await self._chain.start(continuation, details, request)
        if settles:
            call.add_done_callback(lambda finished: _settle_when_read(finished, settles))
        return call


def _settle_when_read(finished: Any, settles: list[Settle]) -> None:
    """A streaming call's final code is read with a coroutine: settle a moment later."""
    task: asyncio.Task[grpc.StatusCode] = asyncio.ensure_future(finished.code())
    _settling.add(task)

    def report(task: asyncio.Task[grpc.StatusCode]) -> None:
        _settling.discard(task)
        ok = not task.cancelled() and task.exception() is None
        _settle(settles, task.result() if ok else grpc.StatusCode.CANCELLED)

    task.add_done_callback(report)


def open_channel(
    target: str,
    *,
    retryable: Sequence[tuple[str, str]] = (),
    default_timeout: float = DEFAULT_TIMEOUT,
    middlewares: Sequence[ClientMiddleware] = (),
) -> aio.Channel:
    """An insecure (mesh-internal; mTLS is the sidecar's job) channel to ``target``, its
    calls passing through ``middlewares`` in order."""
    chain = _Chain(default_timeout, middlewares)
    return aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(retryable)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_Unary(chain), _Stream(chain)],
    )
