"""Client resilience per downstream: a circuit breaker and a bulkhead, as grpc.aio interceptors.

Open every channel to another service with its guard::

    open_channel(settings.target("inventory"), interceptors=guard("inventory", settings, metrics))

- **Bulkhead**: at most ``max_concurrent`` calls to the downstream in flight; the next one
  fails at once with RESOURCE_EXHAUSTED instead of queueing behind a slow dependency.
- **Circuit breaker**: CLOSED counts consecutive failures (UNAVAILABLE, DEADLINE_EXCEEDED,
  RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN; any other code proves the downstream is alive and
  resets the count). At ``failure_threshold`` it opens: calls fail at once with UNAVAILABLE
  without touching the network. After ``reset_timeout`` seconds it is HALF_OPEN: one probe
  goes through (the others still fail fast); its success closes the breaker, its failure
  opens it again for another ``reset_timeout``.

The state is exported as ``emporium_circuit_breaker_state{downstream}`` (0 closed, 1 open,
2 half-open), transitions as ``emporium_circuit_breaker_transitions_total`` and fail-fast
rejections as ``emporium_client_rejected_total{downstream,reason}``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.platform.config import Settings
from services.platform.metrics import Metrics

log = logging.getLogger("emporium.resilience")

Clock = Callable[[], float]

#: Codes that say the downstream is unhealthy (or overloaded), as opposed to a business answer.
FAILURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


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
        failed = code in FAILURE_CODES
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


class Bulkhead:
    """A bounded number of concurrent calls; no queue, the excess is refused."""

    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.max_concurrent:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)


# --- interceptors ------------------------------------------------------------------------
#
# grpc.aio files each interceptor under ONE arity (an if/elif on its base classes), so an
# object that subclasses both unary-unary and unary-stream interceptors only ever sees
# unary-unary calls. Each gate therefore gets one interceptor per arity.

Settle = Callable[[grpc.StatusCode], None]

# Tasks reading the final code of finished streaming calls; kept so they are not collected.
_settling: set[asyncio.Task[grpc.StatusCode]] = set()


def _rejected(code: grpc.StatusCode, details: str) -> aio.AioRpcError:
    return aio.AioRpcError(code, aio.Metadata(), aio.Metadata(), details=details)


class Gate(Protocol):
    """Admits a call (returning how to settle it) or refuses it with an AioRpcError."""

    #: Whether settling needs the call's final status code.
    needs_code: bool

    def admit(self) -> Settle: ...


class BreakerGate:
    """Fails calls fast with UNAVAILABLE while the downstream's breaker is open."""

    needs_code = True

    def __init__(
        self, downstream: str, breaker: CircuitBreaker, on_reject: Callable[[], None]
    ) -> None:
        self.downstream = downstream
        self.breaker = breaker
        self._on_reject = on_reject

    def admit(self) -> Settle:
        permit = self.breaker.acquire()
        if permit is None:
            self._on_reject()
            raise _rejected(
                grpc.StatusCode.UNAVAILABLE, f"circuit breaker for {self.downstream} is open"
            )
        return lambda code: self.breaker.record(permit, code)


class BulkheadGate:
    """Fails calls fast with RESOURCE_EXHAUSTED when the downstream has too many in flight."""

    needs_code = False

    def __init__(self, downstream: str, bulkhead: Bulkhead, on_reject: Callable[[], None]) -> None:
        self.downstream = downstream
        self.bulkhead = bulkhead
        self._on_reject = on_reject

    def admit(self) -> Settle:
        if not self.bulkhead.try_acquire():
            self._on_reject()
            raise _rejected(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"bulkhead for {self.downstream} is full "
                f"({self.bulkhead.max_concurrent} calls in flight)",
            )
        released = False

        def release(_code: grpc.StatusCode) -> None:
            nonlocal released
            if not released:
                released = True
                self.bulkhead.release()

        return release


class UnaryUnaryGuard(aio.UnaryUnaryClientInterceptor):
    """A gate around unary calls: the outcome is the call's final code."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def intercept_unary_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        settle = self.gate.admit()
        code = grpc.StatusCode.CANCELLED
        try:
            call = await continuation(client_call_details, request)
            code = await call.code()
            return call
        except aio.AioRpcError as error:  # refused further down the chain
            code = error.code()
            raise
        finally:
            settle(code)


class UnaryStreamGuard(aio.UnaryStreamClientInterceptor):
    """A gate around server-streaming calls: settled when the stream ends."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def intercept_unary_stream(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        settle = self.gate.admit()
        try:
            call = await continuation(client_call_details, request)
        except aio.AioRpcError as error:
            settle(error.code())
            raise
        except BaseException:
            settle(grpc.StatusCode.CANCELLED)
            raise
        needs_code = self.gate.needs_code

        def done(finished: Any) -> None:
            if not needs_code:
                settle(grpc.StatusCode.OK)
                return
            # An aio call's final code is read with a coroutine: settle a moment later.
            task: asyncio.Task[grpc.StatusCode] = asyncio.ensure_future(finished.code())
            _settling.add(task)

            def report(task: asyncio.Task[grpc.StatusCode]) -> None:
                _settling.discard(task)
                ok = not task.cancelled() and task.exception() is None
                settle(task.result() if ok else grpc.StatusCode.CANCELLED)

            task.add_done_callback(report)

        call.add_done_callback(done)
        return call


def guarding(gate: Gate) -> list[aio.ClientInterceptor]:
    """The interceptors applying ``gate`` to unary and to server-streaming calls."""
    return [UnaryUnaryGuard(gate), UnaryStreamGuard(gate)]


# --- composition -------------------------------------------------------------------------


@dataclass
class _Instruments:
    """The resilience metrics of one registry, and the guards already handed out."""

    state: Gauge
    transitions: Counter
    rejected: Counter
    guards: dict[str, list[aio.ClientInterceptor]] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> _Instruments:
        return cls(
            state=Gauge(
                "emporium_circuit_breaker_state",
                "Circuit breaker state per downstream: 0 closed, 1 open, 2 half-open.",
                ["downstream"],
                registry=registry,
            ),
            transitions=Counter(
                "emporium_circuit_breaker_transitions",
                "Circuit breaker state changes per downstream.",
                ["downstream", "from_state", "to_state"],
                registry=registry,
            ),
            rejected=Counter(
                "emporium_client_rejected",
                "Outgoing calls failed fast, by downstream and reason.",
                ["downstream", "reason"],
                registry=registry,
            ),
        )


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, _Instruments] = (
    weakref.WeakKeyDictionary()
)


def _instruments(metrics: Metrics | None) -> _Instruments | None:
    if metrics is None:
        return None
    found = _by_registry.get(metrics.registry)
    if found is None:
        found = _by_registry[metrics.registry] = _Instruments.create(metrics.registry)
    return found


def guard(
    downstream: str,
    settings: Settings,
    metrics: Metrics | None,
    *,
    clock: Clock = time.monotonic,
) -> list[aio.ClientInterceptor]:
    """The bulkhead, then the breaker, for calls to ``downstream`` (unary and streaming).

    Configured by ``settings.bulkhead_max_concurrent``, ``settings.breaker_failure_threshold``
    and ``settings.breaker_reset_timeout_seconds``. With ``metrics``, one guard is shared by
    every channel of the process to the same downstream (one breaker per downstream, one
    time series); without, each call builds a fresh, unmeasured guard.
    """
    instruments = _instruments(metrics)
    if instruments is not None and downstream in instruments.guards:
        return list(instruments.guards[downstream])

    def on_transition(old: BreakerState, new: BreakerState) -> None:
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        log.log(
            level,
            "circuit breaker %s",
            new.name.lower(),
            extra={"downstream": downstream, "from_state": old.name.lower()},
        )
        if instruments is not None:
            instruments.state.labels(downstream).set(int(new))
            instruments.transitions.labels(downstream, old.name.lower(), new.name.lower()).inc()

    def rejecter(reason: str) -> Callable[[], None]:
        if instruments is None:
            return lambda: None
        counter = instruments.rejected.labels(downstream, reason)
        return counter.inc

    breaker = CircuitBreaker(
        failure_threshold=settings.breaker_failure_threshold,
        reset_timeout=settings.breaker_reset_timeout_seconds,
        clock=clock,
        on_transition=on_transition,
    )
    bulkhead = Bulkhead(settings.bulkhead_max_concurrent)
    chain = [
        *guarding(BulkheadGate(downstream, bulkhead, rejecter("bulkhead_full"))),
        *guarding(BreakerGate(downstream, breaker, rejecter("circuit_open"))),
    ]
    if instruments is not None:
        instruments.state.labels(downstream).set(int(BreakerState.CLOSED))
        instruments.guards[downstream] = chain
    return list(chain)
