"""The Go client (clients/go/stockcheck on the generated Go stubs, built against Debian's
grpc-go) reads the catalog and the stock of the mesh started by scripts/up, straight from
the catalog and inventory services. What it prints is checked against the services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from grpc import aio

from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh, start, stop

# A first build compiles grpc-go from source (minutes on a busy machine); later ones are cached.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
PORT_OFFSET = 5200  # clear of the other e2e meshes


@pytest.fixture(scope="module")
def stockcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("go") is None:
        pytest.skip("go not found: install the Debian package golang-go")
    bin_dir = tmp_path_factory.mktemp("go-bin")
    result = subprocess.run(
        [str(ROOT / "clients" / "go" / "build")],
        env={**os.environ, "BIN_DIR": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    if result.returncode == 3:  # a Debian package is missing; the script names it
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, f"clients/go/build failed:\n{result.stdout}\n{result.stderr}"
    return bin_dir / "stockcheck"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, stockcheck: Path) -> Iterator[Mesh]:
    running = start(tmp_path_factory.mktemp("clients-go-mesh"), PORT_OFFSET)
    try:
        yield running
    finally:
        stop(running)


def _run(binary: Path, mesh: Mesh, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            str(binary),
            "-catalog",
            mesh.target(DEFAULT_PORTS["catalog"][0]),
            "-inventory",
            mesh.target(DEFAULT_PORTS["inventory"][0]),
            "-json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"stockcheck failed:\n{result.stdout}\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def _every_product(mesh: Mesh, query: str = "") -> list[catalog_pb.Product]:
    products: list[catalog_pb.Product] = []
    async with aio.insecure_channel(mesh.target(DEFAULT_PORTS["catalog"][0])) as channel:
        stub = catalog_grpc.CatalogServiceStub(channel)
        token = ""
        for _ in range(100):  # bounded: the demo catalog has a few pages
            page = await stub.ListProducts(
                catalog_pb.ListProductsRequest(page_size=10, page_token=token, query=query)
            )
            products.extend(page.products)
            token = page.next_page_token
            if not token:
                break
    return products


async def _available(mesh: Mesh, skus: list[str]) -> dict[str, int]:
    async with aio.insecure_channel(mesh.target(DEFAULT_PORTS["inventory"][0])) as channel:
        stub = inventory_grpc.InventoryServiceStub(channel)
        levels = {}
        for sku in skus:
            response = await stub.GetStock(inventory_pb.GetStockRequest(sku=sku))
            levels[sku] = response.stock.available
    return levels


async def test_the_go_client_lists_every_product_with_its_stock(
    mesh: Mesh, stockcheck: Path
) -> None:
    lines = _run(stockcheck, mesh, "-all", "-page-size", "7")

    products = await _every_product(mesh)
    assert [line["name"] for line in lines] == [p.name for p in products]
    assert [line["price_minor"] for line in lines] == [p.price.amount_minor for p in products]
    assert {line["currency"] for line in lines} == {"EUR"}
    stock = await _available(mesh, [p.sku for p in products])
    assert {line["sku"]: line["available"] for line in lines} == stock
    assert all(line["available"] > 0 for line in lines)  # the demo data stocks everything


async def test_the_go_client_reads_one_page_matching_a_query(mesh: Mesh, stockcheck: Path) -> None:
    lines = _run(stockcheck, mesh, "-query", "coffee")

    expected = await _every_product(mesh, query="coffee")
    assert expected, "the demo catalog has coffee products"
    assert [line["name"] for line in lines] == [p.name for p in expected]


def test_the_go_client_prints_a_table_by_default(mesh: Mesh, stockcheck: Path) -> None:
    result = subprocess.run(
        [
            str(stockcheck),
            "-catalog",
            mesh.target(DEFAULT_PORTS["catalog"][0]),
            "-inventory",
            mesh.target(DEFAULT_PORTS["inventory"][0]),
            "-page-size",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    header, *rows = result.stdout.splitlines()
    assert header.split() == ["SKU", "NAME", "PRICE", "AVAILABLE", "RESERVED", "SOLD"]
    assert len(rows) == 3
    assert all(" EUR " in row for row in rows)
