"""The Grafana dashboards of observability/grafana, as the tests read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "observability" / "grafana").glob("*.json"))
#: What Grafana puts in place of the dashboards' variables when it runs a query.
VARIABLES = {"$__rate_interval": "1m", "$service": ".+", "$grpc_service": ".+"}


def expand(expr: str) -> str:
    """``expr`` with the dashboard variables replaced as Grafana would (all values)."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
