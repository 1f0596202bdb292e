"""``scripts/up --observe``: a real Prometheus scrapes every service and the edge with the
rules of observability/prometheus; a dead-lettered poison event fires its alert; every
Grafana dashboard query returns series while the mesh takes orders."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from emporium.order.v1 import order_service_pb2 as order_pb
from redis import Redis

from services.platform.bus import dead_letter_stream, stream_name
from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh, start, stop
from tests.support.mesh import DECLINE, Shop
from tests.support.observability import DASHBOARDS, expand, load, queries

pytestmark = pytest.mark.slow

OFFSET = 3200  # beside the session mesh (3000) and test_local_mesh's own (3100)
SERVICES = set(DEFAULT_PORTS)


@dataclass
class Observed:
    mesh: Mesh
    prometheus: str
    edge: str
    redis: str

    def target(self, name: str) -> str:
        """The service's gRPC address (what tests.support.mesh.Shop calls)."""
        return self.mesh.target(DEFAULT_PORTS[name][0])

    @property
    def admin_password(self) -> str:
        secrets: dict[str, str] = json.loads(
            (self.mesh.data_dir / "local-secrets.json").read_text()
        )
        return secrets["admin"]


def _printed(mesh: Mesh, pattern: str) -> str:
    for line in mesh.output:
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError(f"scripts/up printed no {pattern!r}:\n" + "".join(mesh.output))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    mesh = start(tmp_path_factory.mktemp("observed"), OFFSET, None, "--observe")
    try:
        yield Observed(
            mesh,
            prometheus=_printed(mesh, r"prometheus\s+(http://\S+)/alerts"),
            edge=_printed(mesh, r"edge\s+(http://\S+) "),
            redis=_printed(mesh, r"redis\s+(redis://\S+)"),
        )
    finally:
        stop(mesh)


def _api(prometheus: str, path: str, **params: str) -> Any:
    url = f"{prometheus}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {result!r})")
        time.sleep(0.5)


def test_prometheus_scrapes_every_service_and_the_edge(observed: Observed) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        active = _api(observed.prometheus, "targets", state="active")["activeTargets"]
        healthy = [t for t in active if t["health"] == "up"]
        return active if active and len(healthy) == len(active) else None

    active = _until(all_up, 60, "every target up")
    assert sorted(t["labels"]["service"] for t in active) == sorted([*SERVICES, "edge"])
    edge = next(t for t in active if t["labels"]["service"] == "edge")
    assert edge["labels"]["job"] == "emporium-edge"
    assert edge["scrapeUrl"].endswith("/stats/prometheus")
    rules = _api(observed.prometheus, "rules")["groups"]
    loaded = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"EmporiumServiceDown", "EmporiumEventsDeadLettered"} <= loaded
    assert all(rule["health"] == "ok" for group in rules for rule in group["rules"])


def test_a_dead_lettered_poison_event_fires_the_alert(observed: Observed) -> None:
    redis = Redis.from_url(observed.redis)
    try:
        dead = dead_letter_stream("fulfillment")
        before = redis.xlen(dead)
        # Fulfillment's consumer group reads the order stream: an entry that is no envelope.
        redis.xadd(stream_name("order"), {"garbage": "not an event envelope"})

        def firing() -> list[dict[str, Any]]:
            alerts = _api(observed.prometheus, "alerts")["alerts"]
            return [
                a
                for a in alerts
                if a["labels"]["alertname"] == "EmporiumEventsDeadLettered"
                and a["state"] == "firing"
            ]

        [alert] = _until(firing, 60, "EmporiumEventsDeadLettered firing")
        assert redis.xlen(dead) == before + 1
    finally:
        redis.close()
    assert alert["labels"]["group"] == "fulfillment"
    assert alert["labels"]["severity"] == "warning"
    assert "emporium.dead.fulfillment" in alert["annotations"]["description"]


async def _orders(observed: Observed) -> None:
    """Orders confirmed and shipped, and one declined: sagas, outboxes and consumers at work."""
    shop = await Shop(observed).open()  # type: ignore[arg-type]
    try:
        product = await shop.new_product(1250, 100)
        placed = [await shop.place([(product, 1)]) for _ in range(4)]
        declined = await shop.place([(product, 1)], DECLINE)
        await shop.until([o.order_id for o in placed], [order_pb.ORDER_STATUS_SHIPPED], timeout=60)
        await shop.until([declined.order_id], [order_pb.ORDER_STATUS_REJECTED], timeout=60)
    finally:
        await shop.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def loaded(observed: Observed) -> Observed:
    """The mesh after some load: orders over gRPC, catalog reads and a 404 at the edge."""
    asyncio.run(_orders(observed))
    statuses = [_status(observed.edge + "/v1/products?pageSize=5") for _ in range(5)]
    statuses.append(_status(observed.edge + "/v1/products/no-such-product"))
    assert statuses == [200] * 5 + [404]
    return observed


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_query_returns_series_under_load(loaded: Observed, path: Path) -> None:
    empty: dict[str, str] = {}
    deadline = time.monotonic() + 60
    for title, expr in queries(load(path)):
        query = expand(expr)
        while True:
            result = _api(loaded.prometheus, "query", query=query)["result"]
            if result or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if not result:
            empty[title] = query
    assert not empty, f"queries without series: {empty}"
