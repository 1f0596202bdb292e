"""JSON schemas for Istio objects from the Istio CRDs, with unknown fields rejected.

A CRD's openAPIV3Schema alone accepts any extra key, so a misspelled field would pass; here
every object node that lists `properties` gets `additionalProperties: false`, except where
the CRD preserves unknown fields on purpose (`status`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

Obj = dict[str, Any]


def closed(schema: Any) -> Any:
    """A copy of `schema` where object nodes with `properties` reject other keys."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


def _with_envelope(schema: Obj, api_version: str, kind: str) -> Obj:
    """Add what the API server checks on every custom resource: apiVersion, kind, metadata."""
    schema = copy.deepcopy(schema)
    schema.setdefault("properties", {}).update(
        apiVersion={"type": "string", "enum": [api_version]},
        kind={"type": "string", "enum": [kind]},
        metadata={"type": "object"},
    )
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "spec"})
    return schema


def load_schemas(crds: Path) -> dict[tuple[str, str], Obj]:
    """Closed schemas of every served CRD version, by (apiVersion, kind)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas: dict[tuple[str, str], Obj] = {}
    for crd in yaml.load_all(crds.read_text(), Loader=loader):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                api_version = f"{group}/{version['name']}"
                schema = _with_envelope(version["schema"]["openAPIV3Schema"], api_version, kind)
                schemas[(api_version, kind)] = closed(schema)
    return schemas


class IstioValidator:
    """Validates Istio objects against their CRD's closed schema."""

    def __init__(self, schemas: dict[tuple[str, str], Obj]) -> None:
        self._schemas = schemas
        self._validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}

    def __call__(self, obj: Obj) -> None:
        """Raise jsonschema.ValidationError (or LookupError for an unknown kind)."""
        key = (obj["apiVersion"], obj["kind"])
        if key not in self._validators:
            if key not in self._schemas:
                raise LookupError(f"no served Istio CRD schema for {key}")
            self._validators[key] = jsonschema.Draft7Validator(self._schemas[key])
        error = jsonschema.exceptions.best_match(self._validators[key].iter_errors(obj))
        if error is not None:
            raise error
