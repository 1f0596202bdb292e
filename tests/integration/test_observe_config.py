"""The Prometheus configuration ``scripts/up --observe`` generates: valid for promtool, one
job for the services and one for the edge, every target labelled with its service."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from services.mesh.observe import (
    RULES_DIR,
    edge_target,
    promtool_binary,
    service_targets,
    write_config,
)


def test_the_generated_configuration_passes_promtool_with_the_rules(tmp_path: Path) -> None:
    targets = service_targets({"catalog": 9102, "order": 9105, "order-v2": 9115})
    targets.append(edge_target("127.0.0.1", 9901))
    path = write_config(targets, tmp_path)
    binary = promtool_binary()
    assert binary is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    result = subprocess.run(
        [str(binary), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") >= 1 + len(list(RULES_DIR.glob("*.rules.yml")))


def test_services_and_the_edge_are_scraped_with_their_service_label(tmp_path: Path) -> None:
    targets = service_targets({"catalog": 9102, "order-v2": 9115})
    targets.append(edge_target("127.0.0.1", 9901))
    config = json.loads(write_config(targets, tmp_path).read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"emporium", "emporium-edge"}
    assert jobs["emporium"]["metrics_path"] == "/metrics"
    assert jobs["emporium"]["static_configs"] == [
        {"targets": ["127.0.0.1:9102"], "labels": {"service": "catalog", "version": "v1"}},
        {"targets": ["127.0.0.1:9115"], "labels": {"service": "order", "version": "v2"}},
    ]
    assert jobs["emporium-edge"]["metrics_path"] == "/stats/prometheus"
    assert jobs["emporium-edge"]["static_configs"][0]["labels"]["service"] == "edge"
    assert config["rule_files"] == [str(RULES_DIR / "*.rules.yml")]
