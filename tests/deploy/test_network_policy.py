"""NetworkPolicies: default deny, then exactly the flows the design needs."""

from __future__ import annotations

import pytest

from .chart import SERVICES, Obj, of_kind, pod_templates
from .netpol import External, Pod, reachable

# Who calls whom over gRPC (the design; the edge calls every service).
CALLS = {
    "identity": set(),
    "catalog": {"identity"},
    "inventory": {"identity"},
    "payment": {"identity"},
    "order": {"identity", "catalog", "inventory", "payment", "fulfillment"},
    "fulfillment": {"identity"},
}
DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
PROMETHEUS = Pod("monitoring", {"app": "prometheus"})
ISTIOD = Pod("istio-system", {"app": "istiod"})
STRANGER = Pod("elsewhere", {"app": "curious"})


def _pods(objects: list[Obj]) -> dict[str, Pod]:
    """One pod per component (the canary's pods under `order-v2`)."""
    return {
        name.removeprefix("emporium-"): Pod(
            d["metadata"]["namespace"], d["spec"]["template"]["metadata"]["labels"]
        )
        for name, d in of_kind(objects, "Deployment").items()
    }


def _policies(objects: list[Obj]) -> list[Obj]:
    return list(of_kind(objects, "NetworkPolicy").values())


def test_default_deny_isolates_every_pod_of_the_release(rendered: list[Obj]) -> None:
    deny = of_kind(rendered, "NetworkPolicy")["emporium-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    for name, pod in pod_templates(rendered).items():
        labels = pod["metadata"]["labels"]
        assert deny["podSelector"]["matchLabels"].items() <= labels.items(), name


def test_grpc_flows_are_exactly_the_designed_calls(rendered: list[Obj]) -> None:
    pods, policies = _pods(rendered), _policies(rendered)
    for source_name, source in pods.items():
        caller = source_name.removesuffix("-v2")
        for callee in SERVICES:
            expected = caller == "edge" or callee in CALLS[caller]
            assert reachable(policies, source, pods[callee], 50051) == expected, (
                source_name,
                callee,
            )


def test_outsiders_reach_only_the_edge(rendered: list[Obj]) -> None:
    pods, policies = _pods(rendered), _policies(rendered)
    assert reachable(policies, STRANGER, pods["edge"], 8080)
    assert reachable(policies, External("203.0.113.9"), pods["edge"], 8080)
    for name in SERVICES:
        assert not reachable(policies, STRANGER, pods[name], 50051)
        assert not reachable(policies, pods[name], pods["edge"], 8080)


def test_every_pod_resolves_names(rendered: list[Obj]) -> None:
    policies = _policies(rendered)
    for name, pod in _pods(rendered).items():
        assert reachable(policies, pod, DNS, 53, "UDP"), name
        assert reachable(policies, pod, DNS, 53, "TCP"), name
        assert not reachable(policies, pod, STRANGER, 53, "UDP"), name


@pytest.mark.parametrize(
    ("objects", "postgres", "redis", "outside"),
    [
        ("default_objects", "192.0.2.10", "192.0.2.11", None),
        ("production_objects", "10.20.4.4", "10.30.4.4", "10.99.0.1"),
    ],
)
def test_services_reach_postgres_and_redis_and_the_edge_does_not(
    request: pytest.FixtureRequest, objects: str, postgres: str, redis: str, outside: str | None
) -> None:
    rendered: list[Obj] = request.getfixturevalue(objects)
    pods, policies = _pods(rendered), _policies(rendered)
    for name in SERVICES:
        assert reachable(policies, pods[name], External(postgres), 5432), name
        assert reachable(policies, pods[name], External(redis), 6379), name
        assert not reachable(policies, pods[name], External(postgres), 443), name
        if outside:
            assert not reachable(policies, pods[name], External(outside), 5432), name
    assert not reachable(policies, pods["edge"], External(postgres), 5432)


def test_prometheus_scrapes_the_metrics_port_and_nothing_else(rendered: list[Obj]) -> None:
    pods, policies = _pods(rendered), _policies(rendered)
    for name in SERVICES:
        assert reachable(policies, PROMETHEUS, pods[name], 9090), name
        assert not reachable(policies, PROMETHEUS, pods[name], 50051), name
        assert not reachable(policies, STRANGER, pods[name], 9090), name


def test_sidecars_reach_istiod(rendered: list[Obj]) -> None:
    policies = _policies(rendered)
    for name, pod in _pods(rendered).items():
        assert reachable(policies, pod, ISTIOD, 15012), name
        assert not reachable(policies, pod, ISTIOD, 443), name
