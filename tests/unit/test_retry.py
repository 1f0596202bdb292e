"""One classification of gRPC failures: what a retrying caller waits out, what it accepts."""

from __future__ import annotations

import grpc
import pytest

from services.platform.retry import RETRYABLE, Backoff, backoff_delay


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNAUTHENTICATED,
        # A callee stopping with SIGTERM ends its calls in flight as CANCELLED: a pod
        # restart, not an answer.
        grpc.StatusCode.CANCELLED,
    ],
)
def test_outages_and_restarts_are_retried(code: grpc.StatusCode) -> None:
    assert code in RETRYABLE


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
    ],
)
def test_answers_are_not_retried(code: grpc.StatusCode) -> None:
    assert code not in RETRYABLE


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    assert all(0.05 <= backoff_delay(0, 0.1, 1.0) <= 0.1 for _ in range(100))
    assert all(0.5 <= backoff_delay(20, 0.1, 1.0) <= 1.0 for _ in range(100))
    backoff = Backoff(initial=0.1, cap=0.4)
    delays = [backoff.next() for _ in range(5)]
    assert delays[0] <= 0.1
    assert delays[-1] >= 0.2
    backoff.reset()
    assert backoff.next() <= 0.1
