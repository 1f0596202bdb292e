"""scripts/up on a fresh data directory: every service healthy, seeded, reachable, and
restarted when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio

from services.mesh import demo
from services.mesh.health import check
from services.mesh.up import implemented
from services.platform.config import DEFAULT_PORTS, SERVICES
from tests.e2e.conftest import GRPC_PORT_SHIFT, ROOT, Mesh, start, stop
from tests.e2e.conftest import grpcurl as _grpcurl
from tests.support.ports import shift as ports_shift

pytestmark = pytest.mark.slow


async def test_every_implemented_service_reports_serving(mesh: Mesh) -> None:
    names = implemented()
    assert names == list(SERVICES)
    for name in names:
        assert await check(mesh.target(DEFAULT_PORTS[name][0])), name


async def test_the_catalog_is_seeded_with_demo_products(mesh: Mesh) -> None:
    async with aio.insecure_channel(mesh.target(DEFAULT_PORTS["catalog"][0])) as channel:
        stub = catalog_grpc.CatalogServiceStub(channel)
        page = await stub.ListProducts(catalog_pb.ListProductsRequest(page_size=100))
    assert len(page.products) >= 20
    assert all(p.price.amount_minor > 0 for p in page.products)


def test_grpcurl_lists_the_services_through_reflection(mesh: Mesh) -> None:
    listed = _grpcurl("-plaintext", mesh.target(DEFAULT_PORTS["catalog"][0]), "list").split()
    assert "emporium.catalog.v1.CatalogService" in listed
    assert "grpc.health.v1.Health" in listed


def test_grpcurl_calls_list_products_and_gets_the_seeded_products(mesh: Mesh) -> None:
    out = _grpcurl(
        "-plaintext",
        "-d",
        '{"page_size": 50}',
        mesh.target(DEFAULT_PORTS["catalog"][0]),
        "emporium.catalog.v1.CatalogService/ListProducts",
    )
    products = json.loads(out)["products"]
    assert len(products) >= 20
    assert {"product_id", "sku", "name", "price"} <= set(products[0])


def test_metrics_count_rpcs_by_method_and_code(mesh: Mesh) -> None:
    _grpcurl(
        "-plaintext",
        "-d",
        '{"product_id": "no-such-product"}',
        mesh.target(DEFAULT_PORTS["catalog"][0]),
        "emporium.catalog.v1.CatalogService/GetProduct",
        check=False,
    )
    _grpcurl(
        "-plaintext",
        "-d",
        "{}",
        mesh.target(DEFAULT_PORTS["catalog"][0]),
        "emporium.catalog.v1.CatalogService/ListProducts",
    )
    with urllib.request.urlopen(mesh.metrics_url(DEFAULT_PORTS["catalog"][1]), timeout=10) as r:
        text = r.read().decode()
    ok = [
        line
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total{")
        and 'grpc_method="ListProducts"' in line
        and 'grpc_code="OK"' in line
    ]
    not_found = [
        line
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total{")
        and 'grpc_method="GetProduct"' in line
        and 'grpc_code="NOT_FOUND"' in line
    ]
    assert ok
    assert float(ok[0].rsplit(" ", 1)[1]) >= 1
    assert not_found
    assert float(not_found[0].rsplit(" ", 1)[1]) >= 1
    assert "grpc_server_handling_seconds_bucket" in text


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    own = start(tmp_path / "mesh", offset=3100)
    children = list(own.children)
    assert len(children) >= 3
    assert stop(own) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.pid for p in alive]
    assert "stopped." in "".join(own.output)


def _service_process(mesh: Mesh, name: str) -> psutil.Process:
    """The running ``python -m services <name>`` child of scripts/up."""
    for process in psutil.Process(mesh.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if process.cmdline()[-2:] == ["services", name]:
                return process
    raise AssertionError(f"no running process of {name}")


async def _place_and_ship(mesh: Mesh) -> order_pb.Order:
    """The demo user orders two seeded products with an approved card; the order at its end."""

    def target(name: str) -> str:
        return mesh.target(DEFAULT_PORTS[name][0])

    auth = await demo.log_in_demo_user(target("identity"))
    products = await demo.first_products(target("catalog"), 2)
    async with aio.insecure_channel(target("order")) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        order = await demo.place_order(orders, auth, products)
        deadline = time.monotonic() + 60
        while order.status != order_pb.ORDER_STATUS_SHIPPED and time.monotonic() < deadline:
            if order.status in (order_pb.ORDER_STATUS_REJECTED, order_pb.ORDER_STATUS_CANCELLED):
                break
            await asyncio.sleep(0.2)
            request = order_pb.GetOrderRequest(order_id=order.order_id)
            order = (await orders.GetOrder(request, metadata=auth, timeout=10)).order
        return order


#: A killed service serves again within this many seconds (on a machine with a core to spare).
BACK_WITHIN = 5.0


def _back_within() -> float:
    """BACK_WITHIN, stretched by the run queue per core when the machine is oversubscribed:
    a restart is a CPU-bound interpreter start (imports), so on a machine running nine
    runnable processes per core it takes about nine times longer, whatever scripts/up does."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return BACK_WITHIN * max(1.0, per_core)


async def test_a_service_killed_with_sigkill_is_restarted_and_the_mesh_heals(mesh: Mesh) -> None:
    seed = int(os.environ.get("EMPORIUM_TEST_SEED") or random.randrange(2**32))
    name = random.Random(seed).choice(list(SERVICES))
    within = _back_within()
    context = f"killed {name} (EMPORIUM_TEST_SEED={seed}, bound {within:.1f}s)"
    victim = _service_process(mesh, name)
    target = mesh.target(DEFAULT_PORTS[name][0])
    assert await check(target), context
    killed_at = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    while not await check(target, timeout=0.5):
        assert time.monotonic() - killed_at < within, f"{context}: not serving in time"
        await asyncio.sleep(0.05)
    assert _service_process(mesh, name).pid != victim.pid, context
    order = await _place_and_ship(mesh)
    status = order_pb.OrderStatus.Name(order.status)
    assert order.status == order_pb.ORDER_STATUS_SHIPPED, f"{context}: order {status}"
    printed = mesh.text()
    assert f"{name} exited (killed by SIGKILL); restarting" in printed, context
    assert f"{name} restarted (pid" in printed, context


def test_ctrl_c_while_the_mesh_is_starting_stops_every_process(tmp_path: Path) -> None:
    env = {**os.environ, "VENV": sys.prefix, "PYTHONUNBUFFERED": "1"}
    offset = 3200 + ports_shift()
    process = subprocess.Popen(
        [
            str(ROOT / "scripts" / "up"),
            "--data-dir",
            str(tmp_path / "mesh"),
            "--no-edge",
            "--port-offset",
            str(offset),
            "--grpc-port-offset",
            str(offset + GRPC_PORT_SHIFT),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        children: list[psutil.Process] = []
        while len([c for c in children if "services" in c.cmdline()]) < 3:
            assert time.monotonic() < deadline, "scripts/up started no services"
            assert process.poll() is None, process.communicate()[0]
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(process.pid).children(recursive=True)
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "All " not in output  # stopped before it was up
    assert process.returncode == 130, output
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.pid for p in alive]
    assert "stopped." in output
