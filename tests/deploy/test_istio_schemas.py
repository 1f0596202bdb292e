"""Every rendered Istio object validates against its CRD schema from
../shared/schemas/istio-crds.gen.yaml with unknown fields rejected."""

from __future__ import annotations

import copy
from collections.abc import Callable

import jsonschema
import pytest

from .chart import Obj, is_istio, of_kind
from .istio_schema import IstioValidator

ISTIO_KINDS = {
    "AuthorizationPolicy",
    "DestinationRule",
    "PeerAuthentication",
    "RequestAuthentication",
    "VirtualService",
}


def test_every_istio_object_matches_its_crd_schema(
    rendered: list[Obj], validate_istio: IstioValidator
) -> None:
    objects = [obj for obj in rendered if is_istio(obj)]
    assert {obj["kind"] for obj in objects} == ISTIO_KINDS
    for obj in objects:
        validate_istio(obj)


def _set(path: str, value: object) -> Callable[[Obj], None]:
    *parents, leaf = path.split(".")

    def mutate(obj: Obj) -> None:
        node = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value

    return mutate


MISTAKES = {
    # (kind, name): a misspelled field, a wrong type, a wrong enum value
    "outlier typo": (
        "DestinationRule",
        "emporium-payment",
        _set("spec.trafficPolicy.outlierDetection.consecutive5xxError", 5),
    ),
    "subset typo": ("DestinationRule", "emporium-order", _set("spec.subsets.0.lables", {})),
    "route typo": ("VirtualService", "emporium-order", _set("spec.http.1.route.0.wieght", 10)),
    "weight type": (
        "VirtualService",
        "emporium-order",
        _set("spec.http.1.route.0.weight", "ninety"),
    ),
    "mtls mode": ("PeerAuthentication", "emporium-services", _set("spec.mtls.mode", "STRICTLY")),
    "jwt typo": ("RequestAuthentication", "emporium-jwt", _set("spec.jwtRules.0.jwksUrl", "x")),
    "action": ("AuthorizationPolicy", "emporium-payment", _set("spec.action", "PERMIT")),
    "top level": ("VirtualService", "emporium-catalog", _set("spec.hostz", [])),
    "envelope": ("VirtualService", "emporium-catalog", _set("metdata", {})),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_the_validator_rejects_a_mistake(
    default_objects: list[Obj], validate_istio: IstioValidator, mistake: str
) -> None:
    kind, name, mutate = MISTAKES[mistake]
    obj = copy.deepcopy(of_kind(default_objects, kind)[name])
    validate_istio(obj)
    mutate(obj)
    with pytest.raises(jsonschema.ValidationError):
        validate_istio(obj)


def test_the_validator_refuses_a_kind_it_has_no_schema_for(
    validate_istio: IstioValidator,
) -> None:
    with pytest.raises(LookupError):
        validate_istio({"apiVersion": "networking.istio.io/v9", "kind": "VirtualService"})
