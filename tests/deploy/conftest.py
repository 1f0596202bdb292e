"""Shared fixtures: the chart rendered by Helm's own engine, and the Istio validator.

Nothing here needs a cluster or the network. The chart is rendered for release `emporium`
with the default values (namespace `emporium`) and with values-production.yaml (`shop`).
"""

from __future__ import annotations

import pytest
import yaml

from .chart import CHART, PRODUCTION_VALUES, REPO, Obj, render
from .istio_schema import IstioValidator, load_schemas

ISTIO_CRDS = REPO.parent / "shared" / "schemas" / "istio-crds.gen.yaml"


@pytest.fixture(scope="session")
def default_values() -> Obj:
    values: Obj = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


@pytest.fixture(scope="session")
def production_values() -> Obj:
    values: Obj = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return values


@pytest.fixture(scope="session")
def default_objects() -> list[Obj]:
    return render()


@pytest.fixture(scope="session")
def production_objects(production_values: Obj) -> list[Obj]:
    return render(production_values, namespace="shop")


@pytest.fixture(scope="session", params=["default", "production"])
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    """The chart rendered with the default values, then with the production values."""
    objects: list[Obj] = request.getfixturevalue(f"{request.param}_objects")
    return objects


@pytest.fixture(scope="session")
def validate_istio() -> IstioValidator:
    """Validator from ../shared/schemas/istio-crds.gen.yaml (read there, never copied)."""
    if not ISTIO_CRDS.is_file():
        pytest.skip(f"the Istio CRD schemas are not at {ISTIO_CRDS}")
    return IstioValidator(load_schemas(ISTIO_CRDS))
