"""Access rules and resilience thresholds, read from the Helm chart's values.

``charts/emporium/values.yaml`` is the one place these live: the Istio DestinationRules,
the services' own breakers and the edge's Envoy clusters are all made from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from services.edge.contract import ROOT

VALUES = ROOT / "charts" / "emporium" / "values.yaml"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str | int | float) -> float:
    """Seconds in a Kubernetes/Istio duration such as ``10s``, ``1.5s``, ``250ms`` or ``1m``."""
    if isinstance(duration, int | float):
        return float(duration)
    match = _DURATION.match(duration.strip())
    if match is None:
        raise ValueError(f"not a duration: {duration!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def envoy_duration(value: str | float) -> str:
    """An Envoy (protobuf JSON) duration; ``10s`` stays ``10s``, ``1m`` becomes ``60s``."""
    total = seconds(value)
    text = f"{total:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


@dataclass(frozen=True, slots=True)
class Outlier:
    """Passive health: eject an endpoint after consecutive failures (Istio outlierDetection)."""

    consecutive_5xx: int
    consecutive_gateway_failure: int
    interval: str
    base_ejection_time: str
    max_ejection_percent: int


@dataclass(frozen=True, slots=True)
class Pool:
    """Connection pool limits, i.e. the circuit breaker (Istio connectionPool)."""

    max_connections: int
    max_requests: int
    max_pending_requests: int
    max_requests_per_connection: int  # 0: unlimited


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the edge takes from the chart's values."""

    outlier: Outlier
    pool: Pool
    public_methods: Mapping[str, frozenset[str]]  # context -> methods callable without a token
    service_methods: Mapping[str, frozenset[str]]  # context -> methods only services may call
    canary_service: str | None
    canary_weight: int
    jwt_issuer: str
    jwt_audience: str
    retry_on: str
    retry_attempts: int
    #: context -> methods that need a user token with the admin role
    admin_methods: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: What the edge itself costs per request (charts/emporium/values.yaml ``edge.cost``;
    #: docs/benchmarks.md has the numbers): the share of requests whose spans Envoy
    #: records and exports (the trace context reaches the services either way), which
    #: requests get an access-log line ("all", "errors" or "off"), the seconds between
    #: active health checks of each endpoint (0: none) and how many verified JWTs Envoy
    #: keeps (0: verify the signature of every request).
    trace_sampling_percent: float = 0.0
    access_log: str = "all"
    health_check_interval_seconds: float = 5.0
    jwt_cache_size: int = 1000
    #: Envoy's worker threads (``--concurrency``; values.yaml ``edge.concurrency``).
    worker_threads: int = 1

    def with_outlier(self, **changes: Any) -> Policy:
        return replace(self, outlier=replace(self.outlier, **changes))

    def with_pool(self, **changes: Any) -> Policy:
        return replace(self, pool=replace(self.pool, **changes))


def _methods(services: Mapping[str, Any], key: str) -> dict[str, frozenset[str]]:
    return {name: frozenset(svc.get(key) or ()) for name, svc in services.items()}


ACCESS_LOG_MODES = ("all", "errors", "off")


def _cost(values: Mapping[str, Any]) -> dict[str, Any]:
    cost = (values.get("edge") or {}).get("cost") or {}
    access_log = str(cost.get("accessLog", "all"))
    if access_log not in ACCESS_LOG_MODES:
        raise ValueError(
            f"edge.cost.accessLog must be one of {ACCESS_LOG_MODES}, not {access_log!r}"
        )
    sampling = float(cost.get("traceSamplingPercent", 0.0))
    if not 0.0 <= sampling <= 100.0:
        raise ValueError(f"edge.cost.traceSamplingPercent must be 0-100, got {sampling}")
    return {
        "trace_sampling_percent": sampling,
        "access_log": access_log,
        "health_check_interval_seconds": seconds(cost.get("healthCheckInterval", "5s")),
        "jwt_cache_size": int(cost.get("jwtCacheSize", 1000)),
    }


def _worker_threads(values: Mapping[str, Any]) -> int:
    threads = int((values.get("edge") or {}).get("concurrency", 1))
    if threads < 1:
        raise ValueError(f"edge.concurrency must be at least 1, got {threads}")
    return threads


def policy_from_values(values: Mapping[str, Any]) -> Policy:
    resilience = values["resilience"]
    outlier, pool = resilience["outlier"], resilience["connectionPool"]
    canary = values.get("canary") or {}
    weight = int(canary.get("weight", 0)) if canary.get("enabled", False) else 0
    if not 0 <= weight <= 100:
        raise ValueError(f"canary.weight must be between 0 and 100, got {weight}")
    retries = (values.get("istio") or {}).get("retries") or {}
    return Policy(
        outlier=Outlier(
            consecutive_5xx=int(outlier["consecutive5xxErrors"]),
            consecutive_gateway_failure=int(outlier["consecutiveGatewayErrors"]),
            interval=str(outlier["interval"]),
            base_ejection_time=str(outlier["baseEjectionTime"]),
            max_ejection_percent=int(outlier["maxEjectionPercent"]),
        ),
        pool=Pool(
            max_connections=int(pool["maxConnections"]),
            max_requests=int(pool["http2MaxRequests"]),
            max_pending_requests=int(pool["maxPendingRequests"]),
            max_requests_per_connection=int(pool.get("maxRequestsPerConnection") or 0),
        ),
        public_methods=_methods(values["services"], "publicMethods"),
        service_methods=_methods(values["services"], "serviceMethods"),
        canary_service=(canary.get("service") or "order") if canary.get("enabled") else None,
        canary_weight=weight,
        jwt_issuer=str(values["jwt"]["issuer"]),
        jwt_audience=str(values["jwt"]["audience"]),
        retry_on=str(retries.get("retryOn") or "connect-failure,refused-stream"),
        retry_attempts=int(retries.get("attempts", 2)),
        admin_methods=_methods(values["services"], "adminMethods"),
        worker_threads=_worker_threads(values),
        **_cost(values),
    )


def load_policy(path: Path = VALUES) -> Policy:
    """The policy in ``path`` (default: the chart's values.yaml)."""
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return policy_from_values(values)
