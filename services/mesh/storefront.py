"""The storefront and the API reference page for the local mesh, served behind the edge.

``scripts/up`` installs the npm packages of ``clients/`` when Node.js and npm are there
(``npm ci``, again only when ``clients/package-lock.json`` changes: the same stamp as
scripts/test), then builds the site (esbuild, ``node clients/build.mjs``): the storefront at
``/`` and Swagger UI at ``/docs``. A plain static file server (``python -m http.server``)
serves the build and the edge routes ``/``, ``/assets/`` and ``/docs/`` to it. Without
Node.js there is no site, and ``scripts/up`` says so instead of advertising it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.mesh.processes import Child, ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
SITE = CLIENTS / "dist" / "storefront"
LOCK = CLIENTS / "package-lock.json"
#: Written after a successful ``npm ci``: the lock file's hash (scripts/test writes it too).
STAMP = CLIENTS / "node_modules" / ".emporium-installed"
#: Local port of the static file server (plus the launcher's ``--port-offset``).
STOREFRONT_PORT = 8090


@dataclass(frozen=True)
class Build:
    """The built site, or why there is none."""

    site: Path | None
    reason: str = ""


def lock_hash() -> str:
    """The stamp's value: the first 16 hex digits of the lock file's SHA-256."""
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]


def _run(argv: list[str], what: str) -> str | None:
    """Runs ``argv`` in clients/; the error text when it fails."""
    result = subprocess.run(
        argv, cwd=CLIENTS, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode == 0:
        return None
    return f"{what} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


def ensure_packages() -> str | None:
    """``npm ci`` unless node_modules already matches the lock file; the error text if the
    packages cannot be installed."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: install Node.js 20+ with npm"
    want = lock_hash()
    if STAMP.is_file() and STAMP.read_text().strip() == want:
        return None
    print("installing the storefront's npm packages (npm ci --prefix clients) …", flush=True)
    error = _run([npm, "ci", "--no-audit", "--no-fund"], "npm ci")
    if error is None:
        STAMP.write_text(want + "\n")
    return error


def ensure_built() -> Build:
    """Installs the npm packages when needed and builds the site."""
    node = shutil.which("node")
    if node is None:
        return Build(None, "node not found: install Node.js 20+ with npm")
    error = ensure_packages()
    if error is not None:
        return Build(None, error)
    error = _run([node, str(CLIENTS / "build.mjs")], "the storefront build")
    if error is not None or not (SITE / "index.html").is_file():
        return Build(None, error or f"the build wrote no {SITE / 'index.html'}")
    return Build(SITE)


def start(group: ProcessGroup, site: Path, port: int) -> Child:
    return group.python(
        "storefront",
        ["http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        {},
    )
