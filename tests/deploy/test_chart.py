"""The chart lints clean and renders, with Helm's own engine, every object the design needs."""

from __future__ import annotations

import helm_python
import pytest

from .chart import CHART, NAMESPACE, SERVICES, Obj, container, is_istio, of_kind, render

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize("values_file", ["values.yaml", "values-production.yaml"])
def test_chart_lints_clean_in_strict_mode(values_file: str, request: pytest.FixtureRequest) -> None:
    values = None if values_file == "values.yaml" else request.getfixturevalue("production_values")
    report = helm_python.lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.29.0"
    )
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


def test_every_object_is_named_and_namespaced(rendered: list[Obj]) -> None:
    for obj in rendered:
        assert obj["metadata"]["name"], obj
        assert obj["metadata"]["namespace"] in {"emporium", "shop"}, obj["metadata"]


def test_each_service_has_a_deployment_a_service_and_a_service_account(
    rendered: list[Obj],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    services = of_kind(rendered, "Service")
    accounts = of_kind(rendered, "ServiceAccount")
    for name in (*SERVICES, "edge"):
        assert f"emporium-{name}" in deployments
        assert f"emporium-{name}" in accounts
        assert (
            deployments[f"emporium-{name}"]["spec"]["template"]["spec"]["serviceAccountName"]
            == f"emporium-{name}"
        )
    for name in SERVICES:
        ports = {p["name"]: p["port"] for p in services[f"emporium-{name}"]["spec"]["ports"]}
        assert ports == {"grpc": 50051, "http-metrics": 9090}
    assert services["emporium-edge"]["spec"]["ports"][0]["port"] == 8080


def test_every_deployment_has_an_autoscaler_and_a_disruption_budget(rendered: list[Obj]) -> None:
    deployments = set(of_kind(rendered, "Deployment"))
    autoscalers = of_kind(rendered, "HorizontalPodAutoscaler")
    budgets = of_kind(rendered, "PodDisruptionBudget")
    assert deployments == set(autoscalers) == set(budgets)
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }


def test_each_service_runs_the_one_image_chosen_by_argument_and_environment(
    default_objects: list[Obj],
) -> None:
    for name in SERVICES:
        c = container(default_objects, f"emporium-{name}")
        assert c["image"] == "registry.example.com/emporium:0.1.0"
        assert c["args"] == [name]
        assert {"name": "EMPORIUM_SERVICE", "value": name} in c["env"]


def test_the_edge_runs_envoy_with_the_configuration_from_files_envoy_yaml(
    default_objects: list[Obj],
) -> None:
    config = of_kind(default_objects, "ConfigMap")["emporium-edge"]
    assert config["data"]["envoy.yaml"] == (CHART / "files" / "envoy.yaml").read_text()
    edge = container(default_objects, "emporium-edge")
    assert edge["image"] == "envoyproxy/envoy:v1.40-latest"
    assert edge["args"][:2] == ["--config-path", "/etc/envoy/envoy.yaml"]


def test_the_canary_is_a_second_order_deployment_behind_the_same_service(
    default_objects: list[Obj],
) -> None:
    deployments = of_kind(default_objects, "Deployment")
    v1, v2 = deployments["emporium-order"], deployments["emporium-order-v2"]
    assert v1["spec"]["template"]["metadata"]["labels"]["version"] == "v1"
    assert v2["spec"]["template"]["metadata"]["labels"]["version"] == "v2"
    selector = of_kind(default_objects, "Service")["emporium-order"]["spec"]["selector"]
    for deployment in (v1, v2):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert {"name": "SERVICE_VERSION", "value": "v2"} in container(
        default_objects, "emporium-order-v2"
    )["env"]


def test_without_the_canary_there_is_no_v2() -> None:
    objects = render({"canary": {"enabled": False}})
    assert "emporium-order-v2" not in of_kind(objects, "Deployment")
    routes = of_kind(objects, "VirtualService")["emporium-order"]["spec"]["http"]
    assert [r["name"] for r in routes] == ["default"]


def test_istio_is_switched_off_by_values() -> None:
    objects = render({"istio": {"enabled": False}})
    assert [obj["kind"] for obj in objects if is_istio(obj)] == []
    labels = of_kind(objects, "Deployment")["emporium-catalog"]["spec"]["template"]["metadata"]
    assert "sidecar.istio.io/inject" not in labels["labels"]


def test_a_secret_in_plain_values_is_refused() -> None:
    with pytest.raises(helm_python.HelmError, match="never from values"):
        render({"services": {"catalog": {"env": {"DATABASE_URL": "postgresql://u:p@db/x"}}}})


@pytest.mark.parametrize(
    "values",
    [
        {"canary": {"wieght": 50}},
        {"canary": {"weight": 150}},
        {"resilience": {"outlier": {"interval": "10 seconds"}}},
        {"resilience": {"breaker": {"failureTreshold": 3}}},
        {"services": {"catalog": {"databse": {"secretName": "x", "secretKey": "y"}}}},
    ],
)
def test_a_misspelled_or_out_of_range_value_is_refused(values: Obj) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="schema"):
        render(values)


def test_a_release_the_edge_configuration_does_not_address_is_refused() -> None:
    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmError, match="does not address the services"),
    ):
        chart.render(None, name="shop", namespace=NAMESPACE)
