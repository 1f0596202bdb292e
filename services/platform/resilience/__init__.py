"""Client resilience per downstream: a circuit breaker and a bulkhead, as client middlewares.

Open every channel to another service with its guard::

    open_channel(settings.target("inventory"), middlewares=guard("inventory", settings, metrics))

- **Bulkhead**: at most ``max_concurrent`` calls to the downstream in flight; the next one
  fails at once with RESOURCE_EXHAUSTED instead of queueing behind a slow dependency.
- **Circuit breaker** (:mod:`.breaker`): CLOSED counts consecutive failures (UNAVAILABLE,
  DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN; any other code proves the
  downstream is alive and resets the count). At ``failure_threshold`` it opens: calls fail
  at once with UNAVAILABLE without touching the network, carrying in their trailing
  metadata how long until the probe (:func:`retry_after` reads it). After
  ``reset_timeout`` seconds it is HALF_OPEN: one probe goes through (the others still fail
  fast); its success closes the breaker, its failure opens it again.

The state is exported as ``emporium_circuit_breaker_state{downstream}`` (0 closed, 1 open,
2 half-open), transitions as ``emporium_circuit_breaker_transitions_total`` and fail-fast
rejections as ``emporium_client_rejected_total{downstream,reason}``.
"""

from services.platform.resilience.breaker import BreakerState, CircuitBreaker, Permit
from services.platform.resilience.bulkhead import Bulkhead
from services.platform.resilience.gates import (
    RETRY_AFTER_KEY,
    BreakerGate,
    BulkheadGate,
    GateMiddleware,
    guard,
    retry_after,
)

__all__ = [
    "RETRY_AFTER_KEY",
    "BreakerGate",
    "BreakerState",
    "Bulkhead",
    "BulkheadGate",
    "CircuitBreaker",
    "GateMiddleware",
    "Permit",
    "guard",
    "retry_after",
]
