"""The storefront's static files for the local mesh, served behind the edge.

The page is built from ``clients/`` (esbuild, ``node clients/build.mjs``) when Node.js and
the npm packages are there; a plain static file server (``python -m http.server``) serves
the build, and the edge routes ``/`` and ``/assets/`` to it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from services.mesh.processes import Child, ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
SITE = CLIENTS / "dist" / "storefront"
#: Local port of the static file server (plus the launcher's ``--port-offset``).
STOREFRONT_PORT = 8090


def ensure_built() -> Path | None:
    """The built site, building it first when possible; ``None`` when it cannot be."""
    node = shutil.which("node")
    if node is not None and (CLIENTS / "node_modules").is_dir():
        result = subprocess.run(
            [node, str(CLIENTS / "build.mjs")],
            cwd=CLIENTS,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            print(f"storefront build failed:\n{result.stdout}{result.stderr}")
    return SITE if (SITE / "index.html").is_file() else None


def start(group: ProcessGroup, site: Path, port: int) -> Child:
    return group.python(
        "storefront",
        ["http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        {},
    )
