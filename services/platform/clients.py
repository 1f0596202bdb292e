"""Outgoing gRPC: one way to open a channel to another service.

Every call gets a deadline (the caller's remaining deadline when shorter), is traced,
and is retried by gRPC itself (gRFC A6 retry policy in the service config) only for
read-only methods and only on UNAVAILABLE, with exponential backoff and jitter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grpc import aio

from services.platform import deadlines, telemetry

DEFAULT_TIMEOUT = 5.0


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


def _with_deadline(details: aio.ClientCallDetails, default: float) -> aio.ClientCallDetails:
    timeout = deadlines.timeout_for(default if details.timeout is None else details.timeout)
    return aio.ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files each interceptor under one call type, so unary and streaming calls each
# need their own object.
class _UnaryDeadline(aio.UnaryUnaryClientInterceptor):
    """Gives every unary call a deadline, never longer than what the caller has left."""

    def __init__(self, default: float) -> None:
        self._default = default

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_deadline(details, self._default), request)


class _StreamDeadline(aio.UnaryStreamClientInterceptor):
    """The same for server-streaming calls."""

    def __init__(self, default: float) -> None:
        self._default = default

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_deadline(details, self._default), request)


def open_channel(
    target: str,
    *,
    retryable: Sequence[tuple[str, str]] = (),
    default_timeout: float = DEFAULT_TIMEOUT,
    interceptors: Sequence[aio.ClientInterceptor] = (),
) -> aio.Channel:
    """An insecure (mesh-internal; mTLS is the sidecar's job) channel to ``target``."""
    chain: list[aio.ClientInterceptor] = [
        *telemetry.client_interceptors(),
        _UnaryDeadline(default_timeout),
        _StreamDeadline(default_timeout),
        *interceptors,
    ]
    return aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", service_config(retryable)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=chain,
    )
