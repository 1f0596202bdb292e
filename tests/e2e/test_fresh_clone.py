"""The first command on a fresh clone serves everything it prints.

The repository (its committed HEAD) is cloned into a temporary folder and ``scripts/up``
runs there as a new user would run it: it installs the storefront's npm packages itself
(``npm ci``; the clone has no node_modules), builds the storefront and the API reference,
and starts the mesh. Then the storefront's HTML is at ``/``, the OpenAPI document at
``/openapi.json`` (with every public REST route), and ``/docs`` renders in headless
Chromium (screenshot in test-artifacts/fresh-clone/).

The clone shares this checkout's virtualenv (``VENV``): installing the project again would
take minutes. It must match the clone's pyproject.toml and constraints.txt (it does in CI,
which tests a clone of main).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.edge.contract import DESCRIPTOR, load_rpcs
from services.edge.policy import load_policy
from tests.e2e.conftest import Mesh, start, stop
from tests.e2e.openapi_support import call, edge_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "fresh-clone"
CHROMIUM = Path("/usr/bin/chromium")
PORT_OFFSET = 5800  # clear of the other e2e meshes


def _venv_matches(clone: Path) -> bool:
    """The stamp scripts/_venv.sh compares: the venv was installed from these files."""
    want = hashlib.sha256(
        (clone / "pyproject.toml").read_bytes() + (clone / "constraints.txt").read_bytes()
    ).hexdigest()[:16]
    stamp = Path(sys.prefix) / ".emporium-installed"
    return stamp.is_file() and stamp.read_text().strip() == want


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm not found: install Node.js 20+ (Debian packages nodejs, npm)")
    target = tmp_path_factory.mktemp("fresh-clone") / "emporium"
    cloned = subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cloned.returncode == 0, cloned.stderr
    assert not (target / "clients" / "node_modules").exists()
    if not _venv_matches(target):
        pytest.skip("the committed pyproject.toml/constraints.txt differ from this venv's")
    return target


@pytest.fixture(scope="module")
def fresh(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    running = start(tmp_path_factory.mktemp("fresh-mesh"), PORT_OFFSET, root=clone, timeout=600)
    try:
        yield running
    finally:
        stop(running)


def test_scripts_up_installed_the_npm_packages_and_advertises_the_pages(
    clone: Path, fresh: Mesh
) -> None:
    assert (clone / "clients" / "node_modules" / ".emporium-installed").is_file()
    output = "".join(fresh.output)
    url = edge_url(fresh)
    assert re.search(rf"storefront\s+{re.escape(url)}/ ", output), output
    assert f"{url}/docs/" in output
    assert f"{url}/openapi.json" in output


def test_the_storefront_html_is_at_the_root(fresh: Mesh) -> None:
    reply = call(fresh, "GET", "/")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert b"<html" in reply.body.lower()
    assert b"assets/app.js" in reply.body


def test_the_openapi_document_has_every_public_rest_route(fresh: Mesh) -> None:
    reply = call(fresh, "GET", "/openapi.json")
    assert reply.status == 200
    document = reply.json()
    policy = load_policy()
    documented = {(verb.upper(), path) for path, item in document["paths"].items() for verb in item}
    for rpc in load_rpcs(DESCRIPTOR.read_bytes()):
        if rpc.method in policy.service_methods.get(rpc.context, frozenset()):
            assert (rpc.http_method, rpc.http_path) not in documented
        else:
            assert (rpc.http_method, rpc.http_path) in documented, rpc.path


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--window-size=1280,2400",
                "--virtual-time-budget=20000",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def test_docs_renders_in_headless_chromium(fresh: Mesh) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not found: install the Debian package chromium")
    page = f"{edge_url(fresh)}/docs/"
    dom = _chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # Swagger UI built the page from /openapi.json: its title and one block per operation.
    assert "Emporium REST API" in html, html[-2000:]
    operations = re.findall(r'class="opblock opblock-(get|post|patch|put|delete)', html)
    document = call(fresh, "GET", "/openapi.json").json()
    assert len(operations) == sum(len(item) for item in document["paths"].values())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "docs.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(f"--screenshot={screenshot}", page)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000
    (ARTIFACTS / "docs.json").write_text(json.dumps({"url": page, "operations": len(operations)}))
