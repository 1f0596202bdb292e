"""Rendering the chart with Helm's own engine, and reading what it produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "emporium"
PRODUCTION_VALUES = CHART / "values-production.yaml"
RELEASE = NAMESPACE = "emporium"
SERVICES = ("identity", "catalog", "inventory", "payment", "order", "fulfillment")

Obj = dict[str, Any]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys, as kubectl's strict decoding does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(key) for key in keys if keys.count(key) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {duplicates}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def load_documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc]


def render(values: Obj | None = None, namespace: str = NAMESPACE) -> list[Obj]:
    """Render the chart (release `emporium`) and parse every manifest."""
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=namespace)
    return [
        obj
        for path, text in sorted(manifests.items())
        if path.endswith(".yaml")
        for obj in load_documents(text)
    ]


def is_istio(obj: Obj) -> bool:
    return str(obj["apiVersion"]).split("/")[0].endswith(".istio.io")


def of_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    """The objects of one kind, by name."""
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_templates(objects: list[Obj]) -> dict[str, Obj]:
    """Each Deployment's pod template, by Deployment name."""
    return {name: d["spec"]["template"] for name, d in of_kind(objects, "Deployment").items()}


def env_of(container: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def container(objects: list[Obj], deployment: str) -> Obj:
    """The first container of a Deployment's pods."""
    first: Obj = pod_templates(objects)[deployment]["spec"]["containers"][0]
    return first
