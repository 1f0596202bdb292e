"""The route table: one route per RPC the edge exposes, matched on its gRPC path.

REST requests are transcoded before routing, and gRPC-Web requests are converted, so
every kind of request meets the same routes, the same JWT rule and the same limits.
"""

from __future__ import annotations

from typing import Any

from services.edge.contract import ROOT, Rpc
from services.edge.policy import envoy_duration
from services.edge.spec import EdgeSpec, RateLimit

JWT_FILTER = "envoy.filters.http.jwt_authn"
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"
CORS_FILTER = "envoy.filters.http.cors"
BUFFER_FILTER = "envoy.filters.http.buffer"
JWT_REQUIREMENT = "identity"
VERSION_HEADER = "x-emporium-version"
NO_CLUSTER = "no-such-method"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/"
#: What the reflection route adds (services/platform/reflection.py: MESH_HEADER, MESH_VALUE).
REFLECTION_HEADER, REFLECTION_MESH = "x-emporium-reflection", "mesh"
_TYPES = "type.googleapis.com/envoy.extensions.filters.http"
LOCAL_RATE_LIMIT = f"{_TYPES}.local_ratelimit.v3.LocalRateLimit"
#: The RPC with a stricter, per-client limit (it checks passwords).
LOGIN = ("identity", "Login")
#: The OpenAPI document scripts/generate writes.
OPENAPI_DOCUMENT = ROOT / "gen" / "openapi" / "emporium.json"


def exposed(spec: EdgeSpec, rpc: Rpc) -> bool:
    """Service-only methods (the saga's calls) are not reachable through the edge."""
    return rpc.method not in spec.policy.service_methods.get(rpc.context, frozenset())


def is_public(spec: EdgeSpec, rpc: Rpc) -> bool:
    return rpc.method in spec.policy.public_methods.get(rpc.context, frozenset())


def _jwt(public: bool) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": f"{_TYPES}.jwt_authn.v3.PerRouteConfig"}
    if public:
        config["disabled"] = True
    else:
        config["requirement_name"] = JWT_REQUIREMENT
    return config


def token_bucket(limit: RateLimit) -> dict[str, Any]:
    return {
        "max_tokens": limit.burst,
        "tokens_per_fill": limit.per_fill,
        "fill_interval": envoy_duration(limit.fill_seconds),
    }


def _percent(key: str) -> dict[str, Any]:
    return {"runtime_key": key, "default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def rate_limit(spec: EdgeSpec, prefix: str, per_client: RateLimit | None = None) -> dict[str, Any]:
    """A local rate limit's settings, enabled and enforced (both default to 0%); over it,
    gRPC RESOURCE_EXHAUSTED (HTTP 429 for REST). ``per_client``: a bucket per address."""
    config: dict[str, Any] = {
        "stat_prefix": prefix,
        "token_bucket": token_bucket(spec.general_limit),
        "filter_enabled": _percent(f"{prefix}.enabled"),
        "filter_enforced": _percent(f"{prefix}.enforced"),
        "rate_limited_as_resource_exhausted": True,
        "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
    }
    if per_client is not None:
        # An entry without a value: one bucket per distinct value, i.e. per address.
        config["rate_limits"] = [{"actions": [{"remote_address": {}}]}]
        config["descriptors"] = [
            {"entries": [{"key": "remote_address"}], "token_bucket": token_bucket(per_client)}
        ]
        config["max_dynamic_descriptors"] = 10_000
        config["always_consume_default_token_bucket"] = False
    return config


def _timeout(spec: EdgeSpec, rpc: Rpc) -> float:
    return spec.slow_methods.get(rpc.method, spec.request_timeout_seconds)


def _action(spec: EdgeSpec, rpc: Rpc, canary: bool) -> dict[str, Any]:
    action: dict[str, Any] = {}
    if spec.canary is not None and rpc.context == spec.canary.service and not canary:
        weight = spec.canary.weight
        action["weighted_clusters"] = {
            "clusters": [
                _weighted(rpc.context, 100 - weight, "v1"),
                _weighted(spec.canary.v2_cluster, weight, "v2"),
            ]
        }
    elif spec.canary is not None and canary:
        action["cluster"] = spec.canary.v2_cluster
    else:
        action["cluster"] = rpc.context
    if rpc.server_streaming:
        # A watch lasts as long as the client wants; only silence ends it.
        action["timeout"] = "0s"
        action["idle_timeout"] = envoy_duration(spec.stream_idle_timeout_seconds)
    else:
        timeout = envoy_duration(_timeout(spec, rpc))
        action["timeout"] = timeout
        # A gRPC client's own (shorter) deadline wins; never a longer one.
        action["max_stream_duration"] = {"grpc_timeout_header_max": timeout}
    policy = spec.policy
    if policy.retry_attempts > 0:
        # Only failures where the request never reached a service: safe for every method.
        action["retry_policy"] = {"retry_on": policy.retry_on, "num_retries": policy.retry_attempts}
    return action


def _weighted(cluster: str, weight: int, version: str) -> dict[str, Any]:
    return {
        "name": cluster,
        "weight": weight,
        "response_headers_to_add": [_header(VERSION_HEADER, version, "OVERWRITE_IF_EXISTS_OR_ADD")],
    }


def _header(key: str, value: str, action: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": action}


def _grpc_timeout(seconds: float) -> str:
    """A ``grpc-timeout`` header value, so services see the edge's deadline."""
    return f"{round(seconds * 1000)}m"


def rpc_route(spec: EdgeSpec, rpc: Rpc, *, canary: bool = False) -> dict[str, Any]:
    """The route of ``rpc``; with ``canary``, the one for requests marked for v2."""
    match: dict[str, Any] = {"path": rpc.path}
    if canary and spec.canary is not None:
        match["headers"] = [{"name": spec.canary.header, "string_match": {"exact": "true"}}]
    route: dict[str, Any] = {
        "name": f"{rpc.context}.{rpc.method}" + (".canary" if canary else ""),
        "match": match,
        "route": _action(spec, rpc, canary),
        "typed_per_filter_config": {JWT_FILTER: _jwt(is_public(spec, rpc))},
    }
    if not rpc.server_streaming:
        route["request_headers_to_add"] = [
            _header("grpc-timeout", _grpc_timeout(_timeout(spec, rpc)), "ADD_IF_ABSENT")
        ]
    if canary:
        # (The weighted route sets the header per cluster instead.)
        route["response_headers_to_add"] = [
            _header(VERSION_HEADER, "v2", "OVERWRITE_IF_EXISTS_OR_ADD")
        ]
    if (rpc.context, rpc.method) == LOGIN:
        route["typed_per_filter_config"][RATE_LIMIT_FILTER] = {
            "@type": LOCAL_RATE_LIMIT,
            **rate_limit(spec, "edge_login_rate_limit", per_client=spec.login_limit),
        }
    return route


def _not_found() -> dict[str, Any]:
    """Everything else, including the service-only methods: 404 (JSON for REST through the
    local reply mapping, UNIMPLEMENTED for gRPC clients).

    A route to a cluster that does not exist rather than a direct response: REST paths
    match it before they are transcoded, and only a route with a route entry carries the
    CORS policy that answers a browser's preflight.
    """
    return {
        "name": "not-found",
        "match": {"prefix": "/"},
        "route": {"cluster": NO_CLUSTER, "cluster_not_found_response_code": "NOT_FOUND"},
        "typed_per_filter_config": {JWT_FILTER: _jwt(public=True)},
    }


TRANSCODER_FILTER = "envoy.filters.http.grpc_json_transcoder"
#: The storefront's page and its bundle, and the API reference page (everything else stays
#: API or not found).
STOREFRONT_PATHS = (
    {"path": "/"},
    {"path": "/index.html"},
    {"prefix": "/assets/"},
    {"path": "/docs"},
    {"prefix": "/docs/"},
)
OPENAPI_PATH = "/openapi.json"
#: Envoy's limit for a direct response body (the OpenAPI document is one).
MAX_DIRECT_RESPONSE_BYTES = 4 * 1024 * 1024
_NO_TRANSCODING = {
    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
    "disabled": True,
}


def _storefront_routes() -> list[dict[str, Any]]:
    """Static files, public, and not for the transcoder (they are not RPCs)."""
    return [
        {
            "name": f"storefront{i}",
            "match": {**match, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
            "route": {"cluster": "storefront", "timeout": "10s"},
            "typed_per_filter_config": {
                JWT_FILTER: _jwt(public=True),
                TRANSCODER_FILTER: _NO_TRANSCODING,
            },
        }
        for i, match in enumerate(STOREFRONT_PATHS)
    ]


def _openapi(spec: EdgeSpec) -> dict[str, Any]:
    """``GET /openapi.json``: the REST API's OpenAPI document (gen/openapi), answered by
    Envoy itself, read from a file next to the config or embedded in it."""
    if spec.openapi_file is not None:
        body = {"filename": spec.openapi_file}
    else:
        body = {"inline_string": OPENAPI_DOCUMENT.read_text()}
    return {
        "name": "openapi",
        "match": {
            "path": OPENAPI_PATH,
            "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
        },
        "direct_response": {"status": 200, "body": body},
        "response_headers_to_add": [
            _header("content-type", "application/json", "OVERWRITE_IF_EXISTS_OR_ADD"),
            _header("cache-control", "no-cache", "OVERWRITE_IF_EXISTS_OR_ADD"),
        ],
        "typed_per_filter_config": {
            JWT_FILTER: _jwt(public=True),
            TRANSCODER_FILTER: _NO_TRANSCODING,
        },
    }


def _reflection(spec: EdgeSpec) -> dict[str, Any]:
    """Server reflection through the edge reaches one service, asked (by a header) to
    describe the whole mesh: ``grpcurl`` lists, describes and calls every service without
    ``-protoset`` (services/platform/reflection.py)."""
    return {
        "name": "reflection",
        "match": {"prefix": REFLECTION},
        "route": {"cluster": spec.reflection_cluster, "timeout": "0s"},
        "request_headers_to_add": [
            _header(REFLECTION_HEADER, REFLECTION_MESH, "OVERWRITE_IF_EXISTS_OR_ADD")
        ],
        "typed_per_filter_config": {
            JWT_FILTER: _jwt(public=True),
            # A bidirectional stream: waiting for the whole request body would hang it.
            BUFFER_FILTER: {"@type": f"{_TYPES}.buffer.v3.BufferPerRoute", "disabled": True},
        },
    }


def _cors(spec: EdgeSpec) -> dict[str, Any]:
    return {
        "@type": f"{_TYPES}.cors.v3.CorsPolicy",
        "allow_origin_string_match": [{"exact": origin} for origin in spec.cors_origins],
        "allow_methods": "GET, POST, PATCH, DELETE, OPTIONS",
        "allow_headers": ", ".join(
            (
                "authorization",
                "content-type",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "x-canary",
                "x-request-id",
                "traceparent",
            )
        ),
        "expose_headers": ", ".join(
            (
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "x-request-id",
                VERSION_HEADER,
            )
        ),
        "max_age": "600",
    }


def route_config(spec: EdgeSpec, rpcs: list[Rpc]) -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    for rpc in rpcs:
        # Services not behind this edge (scripts/up --only) are not found, like unknown ones.
        if not exposed(spec, rpc) or rpc.context not in spec.upstreams:
            continue
        if spec.canary is not None and rpc.context == spec.canary.service:
            routes.append(rpc_route(spec, rpc, canary=True))
        routes.append(rpc_route(spec, rpc))
    if spec.reflection_cluster in spec.upstreams:
        routes.append(_reflection(spec))
    routes.append(_openapi(spec))
    if spec.storefront is not None:
        routes.extend(_storefront_routes())
    routes.append(_not_found())
    return {
        "name": "edge",
        "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BYTES,
        # The not-found route names a cluster that does not exist, on purpose.
        "validate_clusters": False,
        "virtual_hosts": [
            {
                "name": "emporium",
                "domains": ["*"],
                "request_headers_to_remove": list(spec.strip_request_headers),
                "typed_per_filter_config": {CORS_FILTER: _cors(spec)},
                "routes": routes,
            }
        ],
    }
