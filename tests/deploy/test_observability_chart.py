"""The chart ships observability/: the Prometheus rules (a PrometheusRule per file when the
Prometheus Operator's CRDs are installed, a ConfigMap otherwise) and the Grafana dashboards
(ConfigMaps for Grafana's sidecar); its copies match observability/ byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python import _native

from services.mesh.observe import promtool_binary

from .chart import CHART, NAMESPACE, RELEASE, REPO, Obj, load_documents, of_kind

SCRIPT = REPO / "scripts" / "render-observability"
SOURCE = REPO / "observability"
COPIES = CHART / "files" / "observability"
RULE_FILES = sorted((SOURCE / "prometheus").glob("*.rules.yml"))
DASHBOARDS = sorted((SOURCE / "grafana").glob("*.json"))
OPERATOR_API = "monitoring.coreos.com/v1"

_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
#: The spec of monitoring.coreos.com/v1 PrometheusRule (the Operator's CRD schema), closed:
#: a field the Operator does not know fails here as the API server's strict decoding would.
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": [OPERATOR_API]},
        "kind": {"enum": ["PrometheusRule"]},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "query_offset": _DURATION,
                            "limit": {"type": "integer"},
                            "labels": _STRINGS,
                            "partial_response_strategy": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "properties": {
                                        "record": {"type": "string"},
                                        "alert": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": _DURATION,
                                        "keep_firing_for": _DURATION,
                                        "labels": _STRINGS,
                                        "annotations": _STRINGS,
                                    },
                                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


def _render(values: Obj | None = None, api_versions: list[str] | None = None) -> list[Obj]:
    """The chart rendered as Helm would against a cluster serving ``api_versions``.

    helm-python-sdk's ``Chart.render`` has no parameter for them; its native call takes
    Helm's own ``api_versions`` option (``helm template --api-versions``).
    """
    options = {"name": RELEASE, "namespace": NAMESPACE, "api_versions": api_versions or []}
    with helm_python.Chart.load(CHART) as chart:
        rendered = _native.call_string(
            "helm_render",
            chart._raw(),
            json.dumps(values) if values is not None else None,
            json.dumps(options),
        )
    manifests: dict[str, str] = json.loads(rendered)
    return [
        obj
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for obj in load_documents(text)
    ]


@pytest.fixture(scope="module")
def with_operator() -> list[Obj]:
    return _render(api_versions=[OPERATOR_API])


def _promtool_check(tmp_path: Path, files: dict[str, str]) -> None:
    binary = promtool_binary()
    assert binary is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [str(binary), "check", "rules", *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_charts_copies_match_observability(tmp_path: Path) -> None:
    env = {**os.environ, "OBSERVABILITY_OUT": str(tmp_path)}
    subprocess.run([str(SCRIPT)], env=env, check=True, capture_output=True, timeout=60)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.*"))}

    fresh = files(tmp_path)
    assert len(fresh) == len(RULE_FILES) + len(DASHBOARDS)
    assert files(COPIES) == fresh, "the chart's copies are stale: run scripts/render-observability"


def test_without_the_operator_the_rules_ship_in_one_configmap(
    default_objects: list[Obj], tmp_path: Path
) -> None:
    assert not of_kind(default_objects, "PrometheusRule")
    config_map = of_kind(default_objects, "ConfigMap")[f"{RELEASE}-prometheus-rules"]
    data = config_map["data"]
    assert data == {p.name: p.read_text() for p in RULE_FILES}
    _promtool_check(tmp_path, data)


def test_with_the_operator_each_rules_file_is_a_valid_prometheus_rule(
    with_operator: list[Obj], tmp_path: Path
) -> None:
    rules = of_kind(with_operator, "PrometheusRule")
    assert sorted(rules) == sorted(
        f"{RELEASE}-{p.name.removesuffix('.rules.yml')}" for p in RULE_FILES
    )
    assert f"{RELEASE}-prometheus-rules" not in of_kind(with_operator, "ConfigMap")
    validator = jsonschema.Draft7Validator(PROMETHEUS_RULE_SCHEMA)
    for path in RULE_FILES:
        rule = rules[f"{RELEASE}-{path.name.removesuffix('.rules.yml')}"]
        validator.validate(rule)
        assert rule["metadata"]["namespace"] == NAMESPACE
        assert rule["spec"] == yaml.safe_load(path.read_text())
    _promtool_check(
        tmp_path, {f"{name}.yml": yaml.safe_dump(rule["spec"]) for name, rule in rules.items()}
    )


def test_the_prometheus_rule_schema_rejects_a_misspelled_field(with_operator: list[Obj]) -> None:
    rule = next(iter(of_kind(with_operator, "PrometheusRule").values()))
    rule["spec"]["groups"][0]["rules"][0]["exprs"] = rule["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError, match="exprs"):
        jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)


def test_rules_labels_reach_the_rule_objects() -> None:
    values = {"metrics": {"rules": {"labels": {"release": "kube-prometheus-stack"}}}}
    for objects, kind in (
        (_render(values, [OPERATOR_API]), "PrometheusRule"),
        (_render(values), "ConfigMap"),
    ):
        shipped = [
            o for o in objects if o["kind"] == kind and o["metadata"]["labels"].get("release")
        ]
        assert shipped, kind
        assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in shipped)


@pytest.mark.parametrize("api_versions", [[], [OPERATOR_API]])
def test_each_dashboard_ships_in_a_configmap_for_grafanas_sidecar(api_versions: list[str]) -> None:
    objects = _render(api_versions=api_versions)
    config_maps = of_kind(objects, "ConfigMap")
    for path in DASHBOARDS:
        shipped = config_maps[f"{RELEASE}-dashboard-{path.stem}"]
        assert shipped["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert shipped["metadata"]["annotations"]["grafana_folder"] == "Emporium"
        assert shipped["data"] == {path.name: path.read_text()}
        assert json.loads(shipped["data"][path.name])["uid"]
        kubernetes_validate.validate(shipped, "1.29.0", strict=True)


def test_rules_and_dashboards_can_be_left_out() -> None:
    values = {"metrics": {"rules": {"enabled": False}, "dashboards": {"enabled": False}}}
    for api_versions in ([], [OPERATOR_API]):
        objects = _render(values, api_versions)
        assert not of_kind(objects, "PrometheusRule")
        names = of_kind(objects, "ConfigMap")
        assert not [n for n in names if "dashboard" in n or "prometheus-rules" in n]
