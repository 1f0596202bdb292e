"""The Envoy bootstrap: one listener (REST, gRPC-Web, gRPC), its filters, the clusters."""

from __future__ import annotations

import base64
from typing import Any

from services.edge import clusters, routes
from services.edge.contract import Rpc, load_rpcs, services
from services.edge.policy import envoy_duration
from services.edge.spec import EdgeSpec

_EXTENSIONS = "type.googleapis.com/envoy.extensions"
_FILTERS = f"{_EXTENSIONS}.filters"
HCM = f"{_FILTERS}.network.http_connection_manager.v3.HttpConnectionManager"
HEALTH_PATH = "/healthz"
JWKS_PATH = "/.well-known/jwks.json"

#: One JSON line per request; ``trace_id`` joins it to the services' own log lines.
ACCESS_LOG_FIELDS = {
    "time": "%START_TIME%",
    "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "rpc": "%REQ(:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "cluster": "%UPSTREAM_CLUSTER%",
    "upstream": "%UPSTREAM_HOST%",
    "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "user_agent": "%REQ(USER-AGENT)%",
    "user": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_payload:sub)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "traceparent": "%REQ(TRACEPARENT)%",
}

#: gRPC codes for the local replies Envoy makes before a request is transcoded, so a REST
#: client always gets a JSON ``google.rpc.Status``.
_LOCAL_REPLY_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 429: 8, 431: 3, 503: 14, 504: 4}


def _typed(name: str, type_url: str, **config: Any) -> dict[str, Any]:
    return {"name": name, "typed_config": {"@type": type_url, **config}}


def _transcoder(spec: EdgeSpec, rpcs: list[Rpc], descriptor: bytes) -> dict[str, Any]:
    config: dict[str, Any] = {
        "services": sorted(set(services(rpcs).values())),
        "print_options": {
            "always_print_primitive_fields": True,
            "always_print_enums_as_ints": False,
            "preserve_proto_field_names": False,
            # A watch streams one JSON object per line (easy for fetch() and curl -N).
            "stream_newline_delimited": True,
        },
        "convert_grpc_status": True,
        "request_validation_options": {
            "reject_unknown_method": True,
            "reject_unknown_query_parameters": True,
            "reject_binding_body_field_collisions": True,
        },
        "query_param_unescape_plus": True,
    }
    if spec.descriptor_file is not None:
        config["proto_descriptor"] = spec.descriptor_file
    else:
        config["proto_descriptor_bin"] = base64.b64encode(descriptor).decode()
    return _typed(
        "envoy.filters.http.grpc_json_transcoder",
        f"{_FILTERS}.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        **config,
    )


def _jwt_authn(spec: EdgeSpec) -> dict[str, Any]:
    policy = spec.policy
    provider = {
        "issuer": policy.jwt_issuer,
        "audiences": [policy.jwt_audience],
        "remote_jwks": {
            "http_uri": {
                "uri": f"http://127.0.0.1:{spec.listen_port}{JWKS_PATH}",
                "cluster": clusters.JWKS_CLUSTER,
                "timeout": "2s",
            },
            "cache_duration": "300s",
            # Fetch at start and keep retrying until identity answers.
            "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
            "retry_policy": {
                "num_retries": 3,
                "retry_back_off": {"base_interval": "0.2s", "max_interval": "2s"},
            },
        },
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
        # The services verify the token again (defence in depth).
        "forward": True,
        "clock_skew_seconds": 30,
        "payload_in_metadata": "jwt_payload",
    }
    if policy.jwt_cache_size > 0:
        # A token seen before skips the ES256 signature check until it expires.
        provider["jwt_cache_config"] = {"jwt_cache_size": policy.jwt_cache_size}
    return _typed(
        routes.JWT_FILTER,
        f"{_FILTERS}.http.jwt_authn.v3.JwtAuthentication",
        providers={routes.JWT_REQUIREMENT: provider},
        requirement_map={routes.JWT_REQUIREMENT: {"provider_name": routes.JWT_REQUIREMENT}},
        bypass_cors_preflight=True,
    )


def http_filters(spec: EdgeSpec, rpcs: list[Rpc], descriptor: bytes) -> list[dict[str, Any]]:
    """In order: answer probes and preflights, turn gRPC-Web and REST into gRPC, then limit,
    authenticate and route, so every kind of request meets the same rules."""
    return [
        _typed(
            "envoy.filters.http.health_check",
            f"{_FILTERS}.http.health_check.v3.HealthCheck",
            pass_through_mode=False,
            headers=[{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
        ),
        _typed(routes.CORS_FILTER, f"{_FILTERS}.http.cors.v3.Cors"),
        _typed("envoy.filters.http.grpc_web", f"{_FILTERS}.http.grpc_web.v3.GrpcWeb"),
        # Over the limit: 413 before anything is parsed (the transcoder streams bodies).
        _typed(
            routes.BUFFER_FILTER,
            f"{_FILTERS}.http.buffer.v3.Buffer",
            max_request_bytes=spec.max_request_bytes,
        ),
        _transcoder(spec, rpcs, descriptor),
        _typed(
            routes.RATE_LIMIT_FILTER,
            routes.LOCAL_RATE_LIMIT,
            **routes.rate_limit(spec, "edge_rate_limit"),
        ),
        _jwt_authn(spec),
        _typed("envoy.filters.http.router", f"{_FILTERS}.http.router.v3.Router"),
    ]


def _header_filter(name: str, prefix: str | None = None) -> dict[str, Any]:
    """Matches a request with header ``name`` (not starting with ``prefix``, if given)."""
    if prefix is None:
        return {"header_filter": {"header": {"name": name, "present_match": True}}}
    matcher = {
        "name": name,
        "string_match": {"prefix": prefix},
        "invert_match": True,
        "treat_missing_header_as_empty": True,
    }
    return {"header_filter": {"header": matcher}}


def _json_status(code: int) -> dict[str, Any]:
    return {
        "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%", "details": []},
        "content_type": "application/json",
    }


def _for_rest(condition: dict[str, Any]) -> dict[str, Any]:
    """``condition``, for a request that is not gRPC (or was REST before transcoding)."""
    rest = {
        "or_filter": {
            "filters": [
                _header_filter("content-type", prefix="application/grpc"),
                # A transcoded REST request: its content-type is gRPC by now.
                _header_filter("x-envoy-original-path"),
            ]
        }
    }
    return {"and_filter": {"filters": [condition, rest]}}


def _status_is(status: int) -> dict[str, Any]:
    comparison = {
        "op": "EQ",
        "value": {"default_value": status, "runtime_key": f"edge.local_reply.{status}"},
    }
    return {"status_code_filter": {"comparison": comparison}}


def _local_replies() -> dict[str, Any]:
    """JSON ``google.rpc.Status`` bodies for Envoy's own replies to REST clients; gRPC and
    gRPC-Web clients get gRPC statuses as usual."""
    no_route = {"response_flag_filter": {"flags": ["NC"]}}  # the not-found route
    not_found = {"status_code": 404, "body": {"inline_string": "no such method at the edge"}}
    by_status = [
        {"filter": _for_rest(_status_is(status)), "body_format_override": _json_status(code)}
        for status, code in _LOCAL_REPLY_CODES.items()
    ]
    return {
        "mappers": [
            {"filter": _for_rest(no_route), **not_found, "body_format_override": _json_status(5)},
            {"filter": no_route, **not_found},  # gRPC: UNIMPLEMENTED with this message
            *by_status,
        ]
    }


#: ``access_log: errors``: HTTP status 400 and up, or a gRPC status other than OK (Envoy
#: infers it from the HTTP status when the answer carries none), or an Envoy response flag.
_ERRORS_ONLY = {
    "or_filter": {
        "filters": [
            {
                "status_code_filter": {
                    "comparison": {
                        "op": "GE",
                        "value": {"default_value": 400, "runtime_key": "edge.access_log.min"},
                    }
                }
            },
            {"grpc_status_filter": {"statuses": ["OK"], "exclude": True}},
            {"response_flag_filter": {}},
        ]
    }
}


def _access_log(spec: EdgeSpec) -> list[dict[str, Any]]:
    mode = spec.policy.access_log
    if mode == "off":
        return []
    logger = _typed(
        "envoy.access_loggers.stdout",
        f"{_EXTENSIONS}.access_loggers.stream.v3.StdoutAccessLog",
        log_format={"json_format": ACCESS_LOG_FIELDS},
    )
    if mode == "errors":
        logger["filter"] = _ERRORS_ONLY
    return [logger]


def _tracing(spec: EdgeSpec) -> dict[str, Any]:
    """The edge starts the trace (or continues the client's traceparent) and passes W3C
    traceparent to the services, whose OpenTelemetry spans join it. Only the sampled share
    of requests records and exports a span (``trace_sampling_percent``; a client's sampled
    traceparent is honoured); with no collector listening, exported spans are dropped."""
    percent = spec.policy.trace_sampling_percent
    return {
        "random_sampling": {"value": percent},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "service_name": "emporium-edge",
                "grpc_service": {
                    "envoy_grpc": {"cluster_name": clusters.OTLP_CLUSTER},
                    "timeout": "1s",
                },
            },
        },
    }


def connection_manager(spec: EdgeSpec, rpcs: list[Rpc], descriptor: bytes) -> dict[str, Any]:
    return {
        "@type": HCM,
        "stat_prefix": "edge",
        "codec_type": "AUTO",
        # The edge is the first proxy: the client's address is the peer's, and the
        # x-envoy-* control headers of outside requests are dropped.
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "generate_request_id": True,
        "always_set_request_id_in_response": True,
        "request_id_extension": {
            "typed_config": {
                "@type": f"{_EXTENSIONS}.request_id.uuid.v3.UuidRequestIdConfig",
                "pack_trace_reason": True,
            }
        },
        "tracing": _tracing(spec),
        "stream_idle_timeout": envoy_duration(spec.stream_idle_timeout_seconds),
        # Larger request headers (a long URL counts) are 431 here: forwarded, they would pass
        # the services' gRPC metadata limit, which answers RESOURCE_EXHAUSTED (429).
        "max_request_headers_kb": spec.max_request_headers_kb,
        "common_http_protocol_options": {
            "idle_timeout": "300s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
        "access_log": _access_log(spec),
        "local_reply_config": _local_replies(),
        "route_config": routes.route_config(spec, rpcs),
        "http_filters": http_filters(spec, rpcs, descriptor),
    }


def bootstrap(spec: EdgeSpec, descriptor: bytes) -> dict[str, Any]:
    """The whole Envoy configuration for ``spec``; ``descriptor`` is the transcoder's
    descriptor set (embedded unless ``spec.descriptor_file`` names where it is)."""
    rpcs = load_rpcs(descriptor)
    listener = {
        "name": "edge",
        "address": clusters.socket_address(spec.listen_address, spec.listen_port),
        "per_connection_buffer_limit_bytes": 32768,
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": connection_manager(spec, rpcs, descriptor),
                    }
                ]
            }
        ],
    }
    connections = {
        "name": "envoy.resource_monitors.global_downstream_max_connections",
        "typed_config": {
            "@type": f"{_EXTENSIONS}.resource_monitors.downstream_connections.v3"
            ".DownstreamConnectionsConfig",
            "max_active_downstream_connections": spec.max_connections,
        },
    }
    return {
        "node": {"id": f"emporium-edge-{spec.version}", "cluster": "emporium-edge"},
        "admin": {"address": clusters.socket_address(spec.admin_address, spec.admin_port)},
        # Past this many client connections the edge refuses new ones instead of falling over.
        "overload_manager": {"resource_monitors": [connections]},
        "static_resources": {
            "listeners": [listener],
            "clusters": clusters.clusters(spec, services(rpcs)),
        },
    }
