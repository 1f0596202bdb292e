"""Schemathesis fuzzes the edge of a mesh started by ``scripts/up`` from the OpenAPI document
the edge serves: every public operation, as the demo user (as the admin for admin
operations), at least 1,000 generated cases, and no failure of these checks:

- no 5xx (``not_a_server_error``);
- status codes, content types, headers and bodies as documented;
- input outside the schema is rejected (``negative_data_rejection``) and every 4xx carries a
  JSON ``google.rpc.Status`` (``rejection_is_a_status``, tests/e2e/schemathesis_hooks.py).

Left out: ``positive_data_acceptance`` (the schema carries the proto types, not each service's
business validation, so schema-valid input is often rightly a 400) and ``unsupported_method``
(an unknown method at the edge is 404 Not Found by design, docs/edge.md, not 405).

The run has its own mesh: it registers users and creates products, and it spends the login
rate limit. Its seed is fixed (a failure reproduces); ``--report`` output goes to
test-artifacts/schemathesis/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.edge.routes import OPENAPI_PATH
from tests.e2e.conftest import Mesh, start, stop
from tests.e2e.openapi_support import admin_token, edge_url, user_token

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "schemathesis"
PORT_OFFSET = 5600  # clear of the other e2e meshes
MIN_CASES = 1_000
ADMIN_OPERATIONS = (
    "catalog.CreateProduct",
    "catalog.UpdateProduct",
    "inventory.AdjustStock",
    "payment.GetPayment",
)

CONFIG = """\
seed = 20261202
headers = {{ Authorization = "Bearer ${{EMPORIUM_USER_TOKEN}}" }}
request-timeout = 30
max-failures = 50
[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
response_schema_conformance.enabled = true
negative_data_rejection.enabled = true
rejection_is_a_status.enabled = true
[generation]
max-examples = {examples}
[[operations]]
include-operation-id = [{admin}]
headers = {{ Authorization = "Bearer ${{EMPORIUM_ADMIN_TOKEN}}" }}
[[operations]]
# A stream (newline-delimited JSON) is not one JSON document; test_openapi.py checks each line.
include-operation-id = "order.WatchOrder"
checks.response_schema_conformance.enabled = false
"""


@pytest.fixture(scope="module")
def fuzzed_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    running = start(tmp_path_factory.mktemp("schemathesis-mesh"), PORT_OFFSET)
    try:
        yield running
    finally:
        stop(running)


def test_schemathesis_finds_no_failure_in_1000_cases(fuzzed_mesh: Mesh, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    admin = ", ".join(f'"{op}"' for op in ADMIN_OPERATIONS)
    config.write_text(CONFIG.format(examples=35, admin=admin))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "EMPORIUM_USER_TOKEN": user_token(fuzzed_mesh),
        "EMPORIUM_ADMIN_TOKEN": admin_token(fuzzed_mesh),
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    url = edge_url(fuzzed_mesh)
    result = subprocess.run(
        [
            str(Path(sys.prefix) / "bin" / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{url}{OPENAPI_PATH}",
            "--url",
            url,
            "--report",
            "junit",
            "--report-dir",
            str(ARTIFACTS),
        ],
        cwd=tmp_path,  # its crash cache (.schemathesis/) stays out of the tree
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    output = result.stdout + result.stderr
    (ARTIFACTS / "output.txt").write_text(output)
    assert result.returncode == 0, output[-12_000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None, output[-4_000:]
    assert int(generated.group(1)) >= MIN_CASES, output[-4_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert selected is not None, output[-4_000:]
    assert selected.group(1) == selected.group(2), "every operation is tested"
