"""The edge under failure: a crashing handler, outlier ejection and return, the circuit
breaker. Two inventory processes sit behind one cluster; the second is made to fail every
call by an honest fault in its own store (its stock table renamed away, as an operator's
bad migration would), while its health check keeps answering SERVING. (Inventory, not
catalog: catalog answers reads from memory, so a broken table would not show.)

The edge here uses short outlier intervals and a tiny request limit so the behaviour shows
in seconds; the thresholds' wiring is the production one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from services.edge.policy import load_policy
from services.identity.tokens import SigningKey
from tests.e2e.edge_support import (
    EdgeMesh,
    Instance,
    Response,
    access_log_line,
    edge_mesh,
    request,
)

pytestmark = pytest.mark.slow

POLICY = (
    load_policy()
    .with_outlier(
        consecutive_5xx=3,
        consecutive_gateway_failure=3,
        interval="0.5s",
        base_ejection_time="3s",
        max_ejection_percent=50,
    )
    .with_pool(max_requests=2)
)


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> AsyncIterator[EdgeMesh]:
    async with edge_mesh(
        tmp_path_factory.mktemp("edge-resilience"),
        signing_key,
        orders=False,
        extra_instances={"inventory-b": "inventory"},
        policy=POLICY,
    ) as running:
        yield running


@contextlib.contextmanager
def broken(instance: Instance) -> Iterator[None]:
    """Every stock read on ``instance`` fails (no stock table) until the block ends."""
    with contextlib.closing(sqlite3.connect(instance.database, timeout=10)) as db:
        db.execute("ALTER TABLE stock RENAME TO stock_gone")
        db.commit()
        try:
            yield
        finally:
            db.execute("ALTER TABLE stock_gone RENAME TO stock")
            db.commit()


@pytest.fixture(scope="module")
def stock_path(mesh: EdgeMesh) -> str:
    """The public stock read of a seeded product: inventory answers it from its table.

    The seed stocked the first inventory only; the second gets the same row, so both
    answer 200 while healthy.
    """
    listed = request(mesh, "GET", "/v1/products")
    assert listed.status == 200, listed.body
    sku = listed.json()["products"][0]["sku"]
    with contextlib.closing(sqlite3.connect(mesh.instances["inventory"].database)) as source:
        row = source.execute("SELECT * FROM stock WHERE sku = ?", (sku,)).fetchone()
    assert row is not None, sku
    with contextlib.closing(sqlite3.connect(mesh.instances["inventory-b"].database)) as db:
        db.execute(f"INSERT OR REPLACE INTO stock VALUES ({', '.join('?' * len(row))})", row)
        db.commit()
    return f"/v1/stock/{sku}"


def _host_stats(mesh: EdgeMesh, instance: Instance) -> dict[str, str]:
    """Envoy's view of one endpoint: health flags and counters, from the admin API."""
    prefix = f"{instance.service}::{instance.target}::"
    return {
        line[len(prefix) :].split("::")[0]: line.rsplit("::", 1)[1]
        for line in mesh.admin_get("/clusters").splitlines()
        if line.startswith(prefix)
    }


async def _serving_again(mesh: EdgeMesh, instance: Instance, path: str, timeout: float) -> bool:
    """Waits until the edge routes to ``instance`` again and it answers successfully."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = int(_host_stats(mesh, instance).get("rq_success", "0"))
        if "failed_outlier_check" not in _host_stats(mesh, instance)["health_flags"]:
            for _ in range(4):
                request(mesh, "GET", path)
            if int(_host_stats(mesh, instance).get("rq_success", "0")) > before:
                return True
        await asyncio.sleep(0.2)
    return False


@pytest.fixture
async def inventory_b(mesh: EdgeMesh, stock_path: str) -> Instance:
    """The second inventory, in rotation and answering (each test starts from there)."""
    instance = mesh.instances["inventory-b"]
    assert await _serving_again(mesh, instance, stock_path, timeout=15)
    return instance


def test_a_handler_crash_is_500_with_no_stack_trace(
    mesh: EdgeMesh, inventory_b: Instance, stock_path: str
) -> None:
    with broken(inventory_b):
        # Each Envoy worker keeps its own round robin: inventory-b's turn comes soon, not
        # necessarily second.
        responses = []
        for _ in range(10):
            responses.append(request(mesh, "GET", stock_path))
            if responses[-1].status != 200:
                break
    crashed = responses[-1]
    assert crashed.status == 500, [r.status for r in responses]
    assert crashed.header("content-type") == "application/json"
    assert crashed.json() == {"code": 13, "message": "internal error", "details": []}
    # The trace went to the service's log, where an operator looks for it.
    assert "Traceback" in mesh.log("inventory-b").read_text()


async def test_a_failing_instance_is_ejected_after_consecutive_errors_and_returns(
    mesh: EdgeMesh, inventory_b: Instance, stock_path: str
) -> None:
    threshold = POLICY.outlier.consecutive_5xx
    ejections = _counter(mesh, "outlier_detection.ejections_enforced_consecutive_5xx")
    with broken(inventory_b):
        statuses = [request(mesh, "GET", stock_path).status for _ in range(30)]
    errors = [i for i, status in enumerate(statuses) if status != 200]
    # Round robin sends inventory-b its share of calls until it has failed `threshold` times
    # in a row; then the edge sends it nothing (allowing a call or two while the ejection
    # reaches every Envoy worker).
    assert threshold <= len(errors) <= threshold + 2, statuses
    assert len(statuses) - errors[-1] > 15, statuses
    assert _counter(mesh, "outlier_detection.ejections_enforced_consecutive_5xx") > ejections
    # Repaired, it is back in rotation once the ejection time has passed.
    assert await _serving_again(mesh, inventory_b, stock_path, timeout=3 + 10)


def _counter(mesh: EdgeMesh, name: str) -> int:
    """One of the inventory cluster's counters, from the admin API."""
    stat = f"cluster.inventory.{name}"
    for line in mesh.admin_get(f"/stats?filter=^{stat}$").splitlines():
        key, _, value = line.partition(": ")
        if key == stat:
            return int(value)
    return 0


def _concurrently(mesh: EdgeMesh, count: int) -> list[tuple[Response, float]]:
    """``count`` slow calls (a login runs a memory-hard hash) at the same moment."""
    results: list[tuple[Response, float]] = []
    gate = threading.Barrier(count)
    body = {"username": "nobody-at-all", "password": "wrong-password"}

    def call() -> None:
        gate.wait()
        started = time.monotonic()
        response = request(mesh, "POST", "/v1/sessions", body=body, source="127.0.0.70")
        results.append((response, time.monotonic() - started))

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


async def test_past_max_requests_the_edge_answers_at_once_with_x_envoy_overloaded(
    mesh: EdgeMesh,
) -> None:
    results = _concurrently(mesh, 8)
    overloaded = [(r, t) for r, t in results if r.header("x-envoy-overloaded") == "true"]
    served = [(r, t) for r, t in results if r.header("x-envoy-overloaded") is None]
    assert overloaded, [r.status for r, _ in results]
    assert all(r.status == 503 and r.json()["code"] == 14 for r, _ in overloaded)
    # Refused without queuing: faster than the calls that reached identity.
    assert {r.status for r, _ in served} == {401}
    assert max(t for _, t in overloaded) < max(t for _, t in served)
    for response, _ in overloaded:
        logged = await access_log_line(mesh, response.headers["x-request-id"])
        assert logged["flags"] == "UO"  # upstream overflow: the breaker, not the service
