"""Every rendered Kubernetes object validates, in strict mode (unknown fields rejected),
against the Kubernetes schemas of the oldest and newer supported versions."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from .chart import Obj, is_istio, of_kind

# The chart's kubeVersion is >=1.29; 1.37 is the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", "1.31.0", "1.37.0")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_matches_the_schema(rendered: list[Obj], version: str) -> None:
    objects = [obj for obj in rendered if not is_istio(obj)]
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_a_misspelled_field(default_objects: list[Obj]) -> None:
    deployment = copy.deepcopy(of_kind(default_objects, "Deployment")["emporium-catalog"])
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True  # capital S
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
