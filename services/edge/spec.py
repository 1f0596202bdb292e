"""What differs between one edge and another: addresses, limits and the canary split.

The routes, filters and cluster policy are the same for every edge; an :class:`EdgeSpec`
says where the edge listens, where each service is, and the numbers. :func:`local_spec` is
the edge ``scripts/up`` starts; :func:`chart_spec` is the one the Helm chart ships.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from services.edge.contract import ROOT
from services.edge.policy import Policy, load_policy
from services.platform.config import DEFAULT_PORTS

#: The descriptor set the committed local config reads (generated beside it).
COMMITTED_DESCRIPTOR = ROOT / "envoy" / "emporium-edge.binpb"

#: Browser origins CORS allows locally: the edge itself (the storefront is served through
#: it) and a storefront dev server.
LOCAL_ORIGINS = ("http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173")

#: The chart's files/envoy.yaml is static: it names the Services of release ``emporium``.
CHART_RELEASE = "emporium"
CHART_GRPC_PORT = 50051


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Canary:
    """The edge splits a service between its cluster (v1) and ``<service>-v2``."""

    service: str
    weight: int  # percent to v2 of the requests without the header
    header: str = "x-canary"

    @property
    def v2_cluster(self) -> str:
        return f"{self.service}-v2"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` tokens, ``per_fill`` more every ``fill_seconds``."""

    burst: int
    per_fill: int
    fill_seconds: float


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """Active gRPC health checks (grpc.health.v1) of every endpoint; an interval of 0
    turns them off (outlier detection still ejects failing endpoints)."""

    interval_seconds: float = 5.0
    timeout_seconds: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1


#: Request headers a client must not control: fault injection and Envoy's routing knobs.
STRIPPED_HEADERS = (
    "x-envoy-fault-abort-request",
    "x-envoy-fault-abort-grpc-request",
    "x-envoy-fault-abort-request-percentage",
    "x-envoy-fault-delay-request",
    "x-envoy-fault-delay-request-percentage",
    "x-envoy-fault-throughput-response",
    "x-envoy-fault-throughput-response-percentage",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
)


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """One edge: where it listens, where the services are, and its numbers."""

    policy: Policy
    upstreams: Mapping[str, Sequence[Endpoint]]  # cluster name -> endpoints
    listen_address: str = "127.0.0.1"
    listen_port: int = 8080
    admin_address: str = "127.0.0.1"
    admin_port: int = 9901
    dns: bool = False  # STRICT_DNS clusters (Kubernetes Services) instead of STATIC
    #: Where Envoy reads the descriptor set (written beside the config); None: embedded.
    descriptor_file: str | None = None
    canary: Canary | None = None
    cors_origins: Sequence[str] = LOCAL_ORIGINS
    #: Every request, per edge instance: protects the services' capacity.
    general_limit: RateLimit = RateLimit(burst=10_000, per_fill=5_000, fill_seconds=1)
    #: Logins, per client address: slows down password guessing.
    login_limit: RateLimit = RateLimit(burst=10, per_fill=10, fill_seconds=60)
    max_request_bytes: int = 1024 * 1024
    #: Request headers and URL together; the transcoder forwards the path twice (``:path``
    #: and ``x-envoy-original-path``), which must stay under the services' metadata limit
    #: (services/platform/server.py, MAX_METADATA_BYTES).
    max_request_headers_kb: int = 8
    max_connections: int = 10_000  # client connections, per edge instance
    request_timeout_seconds: float = 15.0
    #: Unary calls that run a saga step or hash a password get longer.
    slow_methods: Mapping[str, float] = field(
        default_factory=lambda: {"PlaceOrder": 30.0, "CancelOrder": 30.0, "Login": 10.0}
    )
    #: A server stream (WatchOrder) has no deadline; silence this long ends it.
    stream_idle_timeout_seconds: float = 1800.0
    health_check: HealthCheck = HealthCheck()
    #: Reflection through the edge goes to this service, which describes the whole mesh.
    reflection_cluster: str = "catalog"
    strip_request_headers: Sequence[str] = STRIPPED_HEADERS
    #: OTLP/gRPC collector for the edge's spans (none listening: the spans are dropped,
    #: the trace context still reaches the services).
    otlp_endpoint: Endpoint = Endpoint("127.0.0.1", 4317)
    version: str = "local"
    #: A static file server with the built storefront, served at ``/`` and the API reference
    #: at ``/docs`` (local only).
    storefront: Endpoint | None = None
    #: Where Envoy reads the OpenAPI document it serves at /openapi.json; None: embedded.
    openapi_file: str | None = None


def _endpoint(target: str) -> Endpoint:
    host, _, port = target.rpartition(":")
    return Endpoint(host, int(port))


def local_spec(
    targets: Mapping[str, str],
    *,
    policy: Policy | None = None,
    canary_target: str | None = None,
    **changes: Any,
) -> EdgeSpec:
    """The local edge in front of ``targets`` (service → ``host:port``).

    With ``canary_target`` the canary service gets a second cluster and the edge splits
    its traffic by the chart's ``canary.weight``; without it, everything goes to v1.
    ``changes`` replace other fields (ports, limits).
    """
    policy = policy or load_policy()
    upstreams = {name: [_endpoint(target)] for name, target in targets.items()}
    canary = None
    if canary_target is not None and policy.canary_service in upstreams:
        canary = Canary(policy.canary_service, policy.canary_weight)
        upstreams[canary.v2_cluster] = [_endpoint(canary_target)]
    spec = EdgeSpec(
        policy=policy, upstreams=upstreams, canary=canary, health_check=_health_check(policy)
    )
    return replace(spec, **changes)


def _health_check(policy: Policy) -> HealthCheck:
    """The chart's ``edge.cost.healthCheckInterval`` (0: no active health checks)."""
    return HealthCheck(interval_seconds=policy.health_check_interval_seconds)


def with_endpoints(spec: EdgeSpec, extra: Mapping[str, Sequence[Endpoint]]) -> EdgeSpec:
    """``spec`` with more endpoints in some clusters (more instances of a service)."""
    upstreams = {name: list(endpoints) for name, endpoints in spec.upstreams.items()}
    for name, endpoints in extra.items():
        upstreams.setdefault(name, []).extend(endpoints)
    return replace(spec, upstreams=upstreams)


def committed_local_spec() -> EdgeSpec:
    """envoy/envoy.yaml: the local edge on the default ports; its descriptor path is
    relative to the repository root (run Envoy from there)."""
    spec = local_spec({name: f"127.0.0.1:{ports[0]}" for name, ports in DEFAULT_PORTS.items()})
    return replace(
        spec,
        descriptor_file=str(COMMITTED_DESCRIPTOR.relative_to(ROOT)),
        openapi_file="gen/openapi/emporium.json",
    )


def chart_spec(policy: Policy | None = None) -> EdgeSpec:
    """The chart's edge: Kubernetes Services by DNS and the descriptor embedded (one
    ConfigMap key). No canary split at the edge: in the cluster Istio's VirtualService
    splits the canary service by the same ``canary.weight`` and ``x-canary`` header (the
    edge's sidecar applies it), so the edge forwards to the one Service."""
    policy = policy or load_policy()
    return EdgeSpec(
        policy=policy,
        upstreams={n: [Endpoint(f"{CHART_RELEASE}-{n}", CHART_GRPC_PORT)] for n in DEFAULT_PORTS},
        listen_address="0.0.0.0",
        dns=True,
        cors_origins=(),
        version="chart",
        health_check=_health_check(policy),
    )
