"""One Envoy cluster per service: HTTP/2, gRPC health checks, breaker, outlier detection."""

from __future__ import annotations

import ipaddress
from typing import Any

from services.edge.policy import envoy_duration
from services.edge.spec import EdgeSpec, Endpoint

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
JWKS_CLUSTER = "edge_jwks"
OTLP_CLUSTER = "otlp_collector"


def socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _load_assignment(name: str, endpoints: list[Endpoint]) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "endpoints": [
            {
                "lb_endpoints": [
                    {"endpoint": {"address": socket_address(e.host, e.port)}} for e in endpoints
                ]
            }
        ],
    }


def _http2(spec: EdgeSpec) -> dict[str, Any]:
    common: dict[str, Any] = {"idle_timeout": "3600s"}
    if spec.policy.pool.max_requests_per_connection:
        common["max_requests_per_connection"] = spec.policy.pool.max_requests_per_connection
    return {
        HTTP_OPTIONS: {
            "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
            "common_http_protocol_options": common,
            "explicit_http_config": {
                "http2_protocol_options": {
                    # Notices a dead service faster than TCP would.
                    "connection_keepalive": {"interval": "30s", "timeout": "5s"}
                }
            },
        }
    }


def _breaker(spec: EdgeSpec) -> dict[str, Any]:
    pool = spec.policy.pool
    return {
        "thresholds": [
            {
                "priority": "DEFAULT",
                "max_connections": pool.max_connections,
                "max_pending_requests": pool.max_pending_requests,
                "max_requests": pool.max_requests,
                "track_remaining": True,
            }
        ]
    }


def _outlier(spec: EdgeSpec) -> dict[str, Any]:
    outlier = spec.policy.outlier
    return {
        "consecutive_5xx": outlier.consecutive_5xx,
        "enforcing_consecutive_5xx": 100,
        "consecutive_gateway_failure": outlier.consecutive_gateway_failure,
        # Off by default in Envoy: without it UNAVAILABLE/DEADLINE_EXCEEDED never eject.
        "enforcing_consecutive_gateway_failure": 100,
        "enforcing_success_rate": 0,
        "interval": envoy_duration(outlier.interval),
        "base_ejection_time": envoy_duration(outlier.base_ejection_time),
        "max_ejection_percent": outlier.max_ejection_percent,
    }


def _health_check(spec: EdgeSpec, service_name: str) -> list[dict[str, Any]]:
    check = spec.health_check
    if check.interval_seconds <= 0:
        return []
    interval = envoy_duration(check.interval_seconds)
    return [
        {
            "timeout": envoy_duration(check.timeout_seconds),
            "interval": interval,
            # Envoy checks idle clusters only once a minute unless told otherwise.
            "no_traffic_interval": interval,
            "unhealthy_threshold": check.unhealthy_threshold,
            "healthy_threshold": check.healthy_threshold,
            "grpc_health_check": {"service_name": service_name},
        }
    ]


def service_cluster(spec: EdgeSpec, name: str, service_name: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STRICT_DNS" if spec.dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": _load_assignment(name, list(spec.upstreams[name])),
        "typed_extension_protocol_options": _http2(spec),
        "circuit_breakers": _breaker(spec),
        "outlier_detection": _outlier(spec),
        "health_checks": _health_check(spec, service_name),
    }


def jwks_cluster(spec: EdgeSpec) -> dict[str, Any]:
    """The edge itself: jwt_authn fetches identity's JWKS through the edge's own REST route."""
    return {
        "name": JWKS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _load_assignment(
            JWKS_CLUSTER, [Endpoint("127.0.0.1", spec.listen_port)]
        ),
    }


def otlp_cluster(spec: EdgeSpec) -> dict[str, Any]:
    """Where the edge sends its spans (OTLP over gRPC)."""
    endpoint = spec.otlp_endpoint
    return {
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS" if spec.dns and not _is_ip(endpoint.host) else "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _load_assignment(OTLP_CLUSTER, [endpoint]),
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def clusters(spec: EdgeSpec, service_names: dict[str, str]) -> list[dict[str, Any]]:
    """A cluster per upstream in ``spec`` (``order-v2`` checks the order service's health)."""
    found = []
    for name in spec.upstreams:
        context = name.removesuffix("-v2")
        if context not in service_names:
            raise ValueError(f"no service for cluster {name!r}")
        found.append(service_cluster(spec, name, service_names[context]))
    if spec.storefront is not None:
        found.append(storefront_cluster(spec.storefront))
    return [*found, jwks_cluster(spec), otlp_cluster(spec)]


STOREFRONT_CLUSTER = "storefront"


def storefront_cluster(endpoint: Endpoint) -> dict[str, Any]:
    """The storefront's static files (HTTP/1.1)."""
    return {
        "name": STOREFRONT_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _load_assignment(STOREFRONT_CLUSTER, [endpoint]),
    }
