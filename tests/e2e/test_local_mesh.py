"""scripts/up on a fresh data directory: every service healthy, seeded, reachable."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import psutil
import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from grpc import aio

from services.mesh.health import check
from services.mesh.up import implemented
from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh, start, stop
from tests.e2e.conftest import grpcurl as _grpcurl

pytestmark = pytest.mark.slow


async def test_every_implemented_service_reports_serving(mesh: Mesh) -> None:
    names = implemented()
    assert {"identity", "catalog", "inventory"} <= set(names)
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
