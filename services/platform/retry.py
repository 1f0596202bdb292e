"""One classification of gRPC failures and one backoff, for every retrying caller.

- ``RETRYABLE``: the call may succeed if repeated (every saga call and every bus effect is
  idempotent, so repeating is safe).
- ``UNHEALTHY``: the downstream is unhealthy or overloaded (a breaker counts these), as
  opposed to a business answer such as NOT_FOUND or FAILED_PRECONDITION.
"""

from __future__ import annotations

import random

import grpc

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNAUTHENTICATED,  # a service token expired or is being renewed
        grpc.StatusCode.CANCELLED,  # the callee stopped (SIGTERM ends its calls in flight)
    }
)

UNHEALTHY = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


def status_code(error: BaseException) -> grpc.StatusCode:
    """The status code of a failed call (UNKNOWN for anything that is not an RPC error)."""
    code = error.code() if isinstance(error, grpc.RpcError) and hasattr(error, "code") else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def is_retryable(error: BaseException) -> bool:
    return status_code(error) in RETRYABLE


def backoff_delay(attempt: int, initial: float, cap: float) -> float:
    """Exponential backoff with jitter: the pause before retry ``attempt`` (0-based)."""
    delay = min(cap, initial * 2 ** min(attempt, 30))
    return random.uniform(delay / 2, delay)


class Backoff:
    """A backoff sequence for loops that wait out an outage; ``reset`` after a success."""

    def __init__(self, initial: float = 0.05, cap: float = 1.0) -> None:
        self._initial = initial
        self._cap = cap
        self._attempt = 0

    def next(self) -> float:
        delay = backoff_delay(self._attempt, self._initial, self._cap)
        self._attempt = min(self._attempt + 1, 30)
        return delay

    def reset(self) -> None:
        self._attempt = 0
