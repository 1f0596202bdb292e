"""``scripts/up --observe``: a real Prometheus scraping the local mesh, with Emporium's rules.

The configuration is generated from what the launcher started: every service's metrics
port (job ``emporium``) and the edge's Envoy admin stats (job ``emporium-edge``), each target
labelled with its ``service``, as observability/prometheus/*.rules.yml expect. Prometheus is
Debian's ``prometheus`` package (the binary on ``PATH``); its data lives in the mesh's data
directory and its log in ``logs/prometheus.log``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services.mesh.processes import Child, ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "observability" / "prometheus"
#: Local port of Prometheus (plus the launcher's ``--port-offset``).
PROMETHEUS_PORT = 9090
#: Scrape and rule evaluation interval: short, so that a local alert shows within seconds.
INTERVAL = "5s"


@dataclass(frozen=True)
class Target:
    """One thing to scrape: ``service`` labels its series, as the rules expect."""

    service: str
    address: str
    job: str = "emporium"
    path: str = "/metrics"
    version: str = "v1"


def prometheus_binary() -> Path | None:
    found = shutil.which("prometheus")
    return Path(found) if found else None


def promtool_binary() -> Path | None:
    found = shutil.which("promtool")
    return Path(found) if found else None


def service_targets(metrics_ports: dict[str, int], host: str = "127.0.0.1") -> list[Target]:
    """The services' ``/metrics`` endpoints; ``order-v2`` (the canary) is order, version v2."""
    targets = []
    for name, port in metrics_ports.items():
        service, _, version = name.partition("-")
        targets.append(Target(service, f"{host}:{port}", version=version or "v1"))
    return targets


def edge_target(admin_host: str, admin_port: int) -> Target:
    """Envoy's admin interface serves its statistics in Prometheus' format."""
    return Target(
        "edge", f"{admin_host}:{admin_port}", job="emporium-edge", path="/stats/prometheus"
    )


def config(
    targets: list[Target], rules_dir: Path = RULES_DIR, interval: str = INTERVAL
) -> dict[str, object]:
    """Prometheus' configuration (JSON is YAML, so it is written as JSON)."""
    jobs: dict[tuple[str, str], list[Target]] = {}
    for target in targets:
        jobs.setdefault((target.job, target.path), []).append(target)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_dir.resolve() / "*.rules.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [
                    {
                        "targets": [t.address],
                        "labels": {"service": t.service, "version": t.version},
                    }
                    for t in members
                ],
            }
            for (job, path), members in jobs.items()
        ],
    }


def write_config(targets: list[Target], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(config(targets), indent=2) + "\n")
    return path


def start(group: ProcessGroup, targets: list[Target], data_dir: Path, port: int) -> Child:
    """Writes ``data_dir/prometheus/prometheus.yml`` and starts Prometheus on it."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("no prometheus binary: install Debian's prometheus package")
    directory = (data_dir / "prometheus").resolve()
    path = write_config(targets, directory)
    argv = [
        str(binary),
        f"--config.file={path}",
        f"--storage.tsdb.path={directory / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return group.start("prometheus", argv, {})


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


async def start_local(
    group: ProcessGroup,
    targets: list[Target],
    data_dir: Path,
    *,
    port_offset: int = 0,
    timeout: float = 30.0,
) -> str:
    """Starts Prometheus for the local mesh and returns its URL once it is ready; raises
    if it does not become ready (the reason is in ``logs/prometheus.log``)."""
    port = PROMETHEUS_PORT + port_offset
    child = start(group, targets, data_dir, port)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.process.poll() is None:
        if await asyncio.to_thread(_ready, url):
            return url
        await asyncio.sleep(0.2)
    raise RuntimeError(f"Prometheus did not become ready; see {child.log_path}")


async def observe_local(
    group: ProcessGroup,
    metrics_ports: dict[str, int],
    edge_admin: tuple[str, int] | None,
    data_dir: Path,
    port_offset: int = 0,
) -> str | None:
    """``scripts/up --observe``: Prometheus for what the launcher started. Returns its URL,
    or ``None`` (having said why) when there is no prometheus binary."""
    if prometheus_binary() is None:
        print("no prometheus binary (Debian package prometheus): starting without Prometheus")
        return None
    targets = service_targets(metrics_ports)
    if edge_admin is not None:
        targets.append(edge_target(*edge_admin))
    return await start_local(group, targets, data_dir, port_offset=port_offset)
