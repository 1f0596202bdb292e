"""istio/ holds exactly what the chart renders: scripts/render-istio re-creates it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .chart import REPO, Obj, is_istio, load_documents

SCRIPT = REPO / "scripts" / "render-istio"
COMMITTED = REPO / "istio"


def _files(directory: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(directory.glob("*.yaml"))}


def test_istio_directory_matches_a_fresh_rendering(tmp_path: Path) -> None:
    env = {**os.environ, "VENV": sys.prefix, "PYTHON": sys.executable, "ISTIO_OUT": str(tmp_path)}
    subprocess.run([str(SCRIPT)], env=env, check=True, capture_output=True, timeout=120)
    fresh = _files(tmp_path)
    assert fresh, "scripts/render-istio wrote nothing"
    assert _files(COMMITTED) == fresh, "istio/ is stale: run scripts/render-istio"


def test_istio_directory_holds_every_istio_object_of_the_chart(default_objects: list[Obj]) -> None:
    committed = [obj for text in _files(COMMITTED).values() for obj in load_documents(text)]
    rendered = [obj for obj in default_objects if is_istio(obj)]

    def key(obj: Obj) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(committed, key=key) == sorted(rendered, key=key)
