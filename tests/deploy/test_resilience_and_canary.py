"""One set of values drives the canary split and the resilience thresholds: the Istio objects
and the services' own breakers agree with values.yaml (the edge: test_edge_config.py)."""

from __future__ import annotations

import pytest

from .chart import SERVICES, Obj, container, env_of, of_kind, render


def _order_routes(objects: list[Obj]) -> dict[str, Obj]:
    routes = of_kind(objects, "VirtualService")["emporium-order"]["spec"]["http"]
    return {route["name"]: route for route in routes}


def _weights(route: Obj) -> dict[str, int]:
    return {r["destination"]["subset"]: r["weight"] for r in route["route"]}


def test_canary_weights_equal_the_values(default_objects: list[Obj], default_values: Obj) -> None:
    weight = default_values["canary"]["weight"]
    assert weight == 10
    routes = _order_routes(default_objects)
    assert _weights(routes["default"]) == {"v1": 100 - weight, "v2": weight}
    assert routes["canary"]["match"] == [{"headers": {"x-canary": {"exact": "true"}}}]
    assert [r["destination"]["subset"] for r in routes["canary"]["route"]] == ["v2"]


@pytest.mark.parametrize("weight", [0, 50, 100])
def test_promoting_the_canary_moves_the_split(weight: int) -> None:
    routes = _order_routes(render({"canary": {"weight": weight}}))
    assert _weights(routes["default"]) == {"v1": 100 - weight, "v2": weight}


def test_other_services_route_everything_to_v1(default_objects: list[Obj]) -> None:
    for name, service in of_kind(default_objects, "VirtualService").items():
        if name != "emporium-order":
            [route] = service["spec"]["http"]
            assert _weights(route) == {"v1": 100}


def test_destination_rules_carry_the_resilience_values(
    rendered: list[Obj], default_values: Obj
) -> None:
    outlier = default_values["resilience"]["outlier"]
    pool = default_values["resilience"]["connectionPool"]
    rules = of_kind(rendered, "DestinationRule")
    assert set(rules) == {f"emporium-{name}" for name in SERVICES}
    for rule in rules.values():
        policy = rule["spec"]["trafficPolicy"]
        assert policy["outlierDetection"] == outlier
        assert policy["connectionPool"] == {
            "tcp": {"maxConnections": pool["maxConnections"]},
            "http": {
                "http1MaxPendingRequests": pool["maxPendingRequests"],
                "http2MaxRequests": pool["http2MaxRequests"],
                "maxRequestsPerConnection": pool["maxRequestsPerConnection"],
            },
        }
        subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
        expected = {"v1", "v2"} if rule["metadata"]["name"] == "emporium-order" else {"v1"}
        assert subsets == {version: {"version": version} for version in expected}


def test_changed_thresholds_reach_the_mesh_and_the_services() -> None:
    resilience = {
        "outlier": {"consecutive5xxErrors": 3, "interval": "5s"},
        "breaker": {"failureThreshold": 7, "resetTimeoutSeconds": 11, "maxConcurrent": 42},
    }
    objects = render({"resilience": resilience})
    outlier = of_kind(objects, "DestinationRule")["emporium-catalog"]["spec"]["trafficPolicy"][
        "outlierDetection"
    ]
    assert (outlier["consecutive5xxErrors"], outlier["interval"]) == (3, "5s")
    env = env_of(container(objects, "emporium-order-v2"))
    assert env["BREAKER_FAILURE_THRESHOLD"]["value"] == "7"
    assert env["BREAKER_RESET_TIMEOUT_SECONDS"]["value"] == "11"
    assert env["BULKHEAD_MAX_CONCURRENT"]["value"] == "42"


def test_every_service_gets_the_breaker_values(rendered: list[Obj], default_values: Obj) -> None:
    breaker = default_values["resilience"]["breaker"]
    expected = {
        "BREAKER_FAILURE_THRESHOLD": str(breaker["failureThreshold"]),
        "BREAKER_RESET_TIMEOUT_SECONDS": str(breaker["resetTimeoutSeconds"]),
        "BULKHEAD_MAX_CONCURRENT": str(breaker["maxConcurrent"]),
    }
    for name in of_kind(rendered, "Deployment"):
        if name != "emporium-edge":
            env = env_of(container(rendered, name))
            assert {key: env[key]["value"] for key in expected} == expected, name
