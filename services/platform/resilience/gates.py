"""The gates (breaker, bulkhead) as client middlewares, and :func:`guard`, which composes
them per downstream with their metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.platform.clients import ClientMiddleware, Outgoing, Settle
from services.platform.config import Settings
from services.platform.metrics import Metrics, PerRegistry
from services.platform.resilience.breaker import BreakerState, CircuitBreaker, Clock
from services.platform.resilience.bulkhead import Bulkhead

log = logging.getLogger("emporium.resilience")

#: Trailing metadata of a call refused by an open breaker: milliseconds until the probe.
RETRY_AFTER_KEY = "emporium-retry-after-ms"


def _rejected(
    code: grpc.StatusCode, details: str, retry_after: float | None = None
) -> aio.AioRpcError:
    trailing = aio.Metadata()
    if retry_after is not None:
        trailing = aio.Metadata((RETRY_AFTER_KEY, str(int(retry_after * 1000))))
    return aio.AioRpcError(code, aio.Metadata(), trailing, details=details)


def retry_after(error: BaseException) -> float | None:
    """Seconds to wait before retrying a call that a breaker refused (``None`` for any other
    failure)."""
    if not isinstance(error, aio.AioRpcError):
        return None
    for key, value in error.trailing_metadata() or ():
        if key == RETRY_AFTER_KEY and isinstance(value, str) and value.isdigit():
            return int(value) / 1000
    return None


class Gate(Protocol):
    """Admits a call (returning how to settle it) or refuses it with an AioRpcError."""

    def admit(self) -> Settle: ...


class BreakerGate:
    """Fails calls fast with UNAVAILABLE while the downstream's breaker is open."""

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
                grpc.StatusCode.UNAVAILABLE,
                f"circuit breaker for {self.downstream} is open",
                retry_after=self.breaker.retry_after(),
            )
        return lambda code: self.breaker.record(permit, code)


class BulkheadGate:
    """Fails calls fast with RESOURCE_EXHAUSTED when the downstream has too many in flight."""

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


class GateMiddleware(ClientMiddleware):
    """A gate in a channel's middlewares: admits each call (or refuses it) before it starts;
    the gate is told the outcome of each call it admitted."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def on_start(self, call: Outgoing) -> Settle:
        return self.gate.admit()


# --- composition -------------------------------------------------------------------------


@dataclass
class _Instruments:
    """The resilience metrics of one registry, and the guards already handed out."""

    state: Gauge
    transitions: Counter
    rejected: Counter
    guards: dict[str, list[ClientMiddleware]] = field(default_factory=dict)

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


_instruments = PerRegistry(_Instruments.create)


def guard(
    downstream: str,
    settings: Settings,
    metrics: Metrics | None,
    *,
    clock: Clock = time.monotonic,
) -> list[ClientMiddleware]:
    """The bulkhead, then the breaker, for calls to ``downstream`` (unary and streaming).

    Configured by ``settings.bulkhead_max_concurrent``, ``settings.breaker_failure_threshold``
    and ``settings.breaker_reset_timeout_seconds``. With ``metrics``, one guard is shared by
    every channel of the process to the same downstream (one breaker per downstream, one
    time series); without, each call builds a fresh, unmeasured guard.
    """
    instruments = _instruments.get(metrics)
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
    chain: list[ClientMiddleware] = [
        GateMiddleware(BulkheadGate(downstream, bulkhead, rejecter("bulkhead_full"))),
        GateMiddleware(BreakerGate(downstream, breaker, rejecter("circuit_open"))),
    ]
    if instruments is not None:
        instruments.state.labels(downstream).set(int(BreakerState.CLOSED))
        instruments.guards[downstream] = chain
    return list(chain)
