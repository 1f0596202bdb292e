"""The Dockerfile, checked statically (docker build cannot run here), and its health check
command run for real against a gRPC health server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .chart import REPO

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|make|clang|cmake|[\w.-]+-dev)\b")
SECRET_WORDS = re.compile(
    r"(PASSWORD|SECRET|TOKEN|PRIVATE|API_?KEY|CREDENTIAL|DATABASE_URL)", re.IGNORECASE
)

Instruction = tuple[str, str]


def _instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) per instruction: comments dropped, continuations joined."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#")]
    logical = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in logical.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _final() -> list[Instruction]:
    return _stages()[-1]


def _arguments(stage: list[Instruction], name: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == name]


def test_the_build_is_multi_stage_and_the_final_stage_copies_from_the_build() -> None:
    stages = _stages()
    assert len(stages) >= 2
    names = [re.search(r"\bAS\s+(\S+)", s[0][1], re.IGNORECASE) for s in stages[:-1]]
    assert all(names)
    copied_from = {
        m.group(1) for a in _arguments(_final(), "COPY") if (m := re.search(r"--from=(\S+)", a))
    }
    assert copied_from
    assert copied_from <= {n.group(1) for n in names if n}


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    users = _arguments(_final(), "USER")
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_the_final_stage_has_no_build_tools() -> None:
    for run in _arguments(_final(), "RUN"):
        assert not ("install" in run and BUILD_TOOLS.search(run)), run
    assert BUILD_TOOLS.search(" ".join(_arguments(_stages()[0], "RUN"))), (
        "the build stage is where compilers belong"
    )


def test_no_secrets_are_baked_into_the_image() -> None:
    for instruction, arguments in _instructions():
        if instruction in {"ENV", "ARG", "LABEL"}:
            assert not SECRET_WORDS.search(arguments), (instruction, arguments)
        if instruction in {"COPY", "ADD"}:
            assert not re.search(r"\.(pem|key|p12|env)\b|\bsecrets?\b", arguments), arguments
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for pattern in ("*", "**/.env", "**/*.pem", "**/*.key"):
        assert pattern in ignored, pattern


def test_the_entrypoint_chooses_the_service_by_argument_or_environment() -> None:
    [entrypoint] = _arguments(_final(), "ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", "services"]
    assert not _arguments(_final(), "CMD"), "no default service: argument or EMPORIUM_SERVICE"


def test_the_image_is_ready_for_a_read_only_root_filesystem() -> None:
    env = " ".join(_arguments(_final(), "ENV"))
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "DATA_DIR=/tmp/emporium",
        "HOME=/tmp",
        "GRPC_HOST=0.0.0.0",
        "GRPC_PORT=50051",
        "METRICS_PORT=9090",
    ):
        assert setting in env, setting
    assert any("compileall" in run for stage in _stages() for run in _arguments(stage, "RUN"))


def _healthcheck_command() -> list[str]:
    [healthcheck] = _arguments(_final(), "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval" in options
    assert "--timeout" in options
    argv: list[str] = json.loads(command)
    return argv


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None).wait()


def test_the_healthcheck_asks_the_grpc_health_service(
    health_server: tuple[int, health.HealthServicer],
) -> None:
    port, servicer = health_server
    argv = _healthcheck_command()
    assert argv[0] == "python"
    assert "grpc_health" in argv[-1]
    run = [sys.executable, *argv[1:]]
    env = {**os.environ, "GRPC_PORT": str(port)}

    def exit_code() -> int:
        return subprocess.run(run, env=env, capture_output=True, timeout=30).returncode

    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert exit_code() == 0
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert exit_code() != 0
