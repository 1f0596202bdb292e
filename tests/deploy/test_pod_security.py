"""Every pod and container meets Pod Security "restricted", with a read-only root filesystem,
probes, requests and limits; secrets reach the containers only from Secrets."""

from __future__ import annotations

from .chart import Obj, env_of, pod_templates

# Volume types the "restricted" profile allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECRET_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SIGNING_KEY_PEM",
    "SERVICE_CREDENTIALS",
    "BOOTSTRAP_ADMIN",
}


def _containers(pod: Obj) -> list[Obj]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_pod_runs_as_non_root_with_the_default_seccomp_profile(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        spec = pod["spec"]
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), (name, host)
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, (name, volume)


def test_every_container_is_restricted_and_read_only(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        for container in _containers(pod):
            context = container["securityContext"]
            where = (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsNonRoot"] is True, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert not context.get("privileged"), where
            assert not any(p.get("hostPort") for p in container.get("ports", [])), where


def test_only_tmp_is_writable(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        for container in _containers(pod):
            for mount in container["volumeMounts"]:
                writable = not mount.get("readOnly")
                if writable:
                    assert mount["mountPath"] == "/tmp", (name, mount)
                    assert "emptyDir" in volumes[mount["name"]], (name, mount)


def test_every_container_has_probes_requests_and_limits(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        for container in pod["spec"]["containers"]:
            where = (name, container["name"])
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, (where, probe)
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, (where, kind)


def test_services_use_native_grpc_probes_on_the_grpc_port(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        if name == "emporium-edge":
            continue
        container = pod["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": 50051}, (name, probe)


def test_secrets_come_only_from_secrets(rendered: list[Obj]) -> None:
    for name, pod in pod_templates(rendered).items():
        for container in _containers(pod):
            for variable, entry in env_of(container).items():
                if variable in SECRET_VARIABLES:
                    assert "value" not in entry, (name, variable)
                    assert set(entry["valueFrom"]) == {"secretKeyRef"}, (name, variable)
            if name == "emporium-edge":
                continue
            assert {"DATABASE_URL", "REDIS_URL"} <= set(env_of(container)), name


def test_the_signing_key_and_service_credentials_reach_only_identity_and_order(
    rendered: list[Obj],
) -> None:
    holders = {
        variable: {
            name
            for name, pod in pod_templates(rendered).items()
            if variable in env_of(pod["spec"]["containers"][0])
        }
        for variable in ("JWT_SIGNING_KEY_PEM", "SERVICE_CREDENTIALS")
    }
    assert holders["JWT_SIGNING_KEY_PEM"] == {"emporium-identity"}
    assert holders["SERVICE_CREDENTIALS"] == {
        "emporium-identity",
        "emporium-order",
        "emporium-order-v2",
    }
