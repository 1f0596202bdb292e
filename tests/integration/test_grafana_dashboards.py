"""observability/grafana: well-formed Grafana dashboards whose every query is valid PromQL
(checked offline by promtool; tests/e2e/test_observe.py runs them against Prometheus)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from services.mesh.observe import promtool_binary
from tests.support.observability import DASHBOARDS, VARIABLES, expand, load, queries


def test_there_are_the_three_dashboards() -> None:
    titles = {load(p)["title"] for p in DASHBOARDS}
    assert titles == {
        "Emporium / Mesh overview",
        "Emporium / Service RED",
        "Emporium / Saga, outbox and bus",
    }
    assert len({load(p)["uid"] for p in DASHBOARDS}) == len(DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_queries_the_chosen_prometheus(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
    used = {
        name.lstrip("$") for _, expr in queries(dashboard) for name in VARIABLES if name in expr
    }
    assert used - {"__rate_interval"} <= set(variables), "a query uses an undefined variable"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    binary = promtool_binary()
    assert binary is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    rules = [
        {"record": f"dashboard:query:{i}", "expr": expand(expr)}
        for i, (_, expr) in enumerate(q for path in DASHBOARDS for q in queries(load(path)))
    ]
    assert len(rules) >= 20
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [str(binary), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
