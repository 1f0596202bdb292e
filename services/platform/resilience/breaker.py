"""The circuit breaker's state machine, free of I/O (the clock is injected).

CLOSED counts consecutive failures (the codes of :data:`services.platform.retry.UNHEALTHY`;
any other code proves the downstream is alive and resets the count). At
``failure_threshold`` it opens: calls are refused without touching the network. After
``reset_timeout`` seconds it is HALF_OPEN: one probe goes through (the others are still
refused); its success closes the breaker, its failure opens it again for another
``reset_timeout``. :meth:`CircuitBreaker.retry_after` tells a refused caller how long to
wait for the probe instead of retrying into the open breaker.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from services.platform.retry import UNHEALTHY

Clock = Callable[[], float]

#: What a caller refused while the half-open probe is in flight is told to wait (seconds).
PROBE_WAIT = 0.5


class BreakerState(enum.IntEnum):
    """The value of the state gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


Transition = Callable[[BreakerState, BreakerState], None]


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call; ``probe`` marks the single half-open trial call."""

    probe: bool


class CircuitBreaker:
    """The breaker's state machine, free of I/O (the clock is injected)."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_timeout: float,
        clock: Clock = time.monotonic,
        on_transition: Transition | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a refused call is worth trying again: until the half-open probe
        while OPEN; while a probe is in flight, a short while (its outcome decides)."""
        if self._state is BreakerState.OPEN:
            return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        if self._state is BreakerState.HALF_OPEN and self._probing:
            return min(PROBE_WAIT, self.reset_timeout)
        return 0.0

    def acquire(self) -> Permit | None:
        """A permit for one call, or ``None`` when the call must fail fast."""
        if self._state is BreakerState.CLOSED:
            return Permit(probe=False)
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_timeout:
                return None
            self._move(BreakerState.HALF_OPEN)
        if self._probing:
            return None
        self._probing = True
        return Permit(probe=True)

    def record(self, permit: Permit, code: grpc.StatusCode) -> None:
        """The outcome of a call made with ``permit``."""
        failed = code in UNHEALTHY
        if permit.probe:
            self._probing = False
            if code is grpc.StatusCode.CANCELLED:
                return  # the caller gave up: no verdict; the next call probes again
            if failed:
                self._open()
            else:
                self._failures = 0
                self._move(BreakerState.CLOSED)
            return
        if self._state is not BreakerState.CLOSED:
            return  # a call started before the breaker opened: its verdict is stale
        if not failed:
            if code is not grpc.StatusCode.CANCELLED:
                self._failures = 0
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_transition is not None:
            self._on_transition(old, new)
