"""Crafted page tokens on every List RPC that takes one, through the edge (REST and gRPC)
and straight to the services: always INVALID_ARGUMENT (HTTP 400; 431 when the token makes
the request's headers longer than the edge's 8 KiB limit, before any service sees it), and
the edge ejects no instance for them (a crafted token once answered INTERNAL, and five in a
row ejected the order service)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio

from services.identity.tokens import SigningKey
from tests.conftest import Tokens
from tests.e2e.edge_support import EdgeMesh, edge_mesh, request
from tests.support.tokens import bearer

pytestmark = pytest.mark.slow

#: Each List RPC with a page token: its list's kind, REST path and whether it needs a user.
LISTS = {
    "ListProducts": ("catalog.products.v1", "/v1/products"),
    "ListOrders": ("order.orders.v1", "/v1/orders"),
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def crafted(kind: str) -> dict[str, str]:
    """Tokens a client could make up, by name, for the list ``kind``."""
    return {
        "huge integer": _b64(json.dumps({"k": kind, "p": [10**300, "x"], "f": "0"}).encode()),
        "old order token": _b64(json.dumps([10**30, "order"]).encode()),
        "deep nesting": _b64(b"[" * 380),
        "nested object": _b64(json.dumps({"k": {"k": {"k": [[[[kind]]]]}}}).encode()),
        "10 KB": "A" * 10_240,
        "not base64": "}{" * 20,
    }


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> AsyncIterator[EdgeMesh]:
    async with edge_mesh(tmp_path_factory.mktemp("page-tokens"), signing_key) as running:
        yield running


def _ejections(mesh: EdgeMesh) -> dict[str, int]:
    """Outlier ejections the edge has enforced so far, per cluster (catalog, order)."""
    counts = {"catalog": 0, "order": 0}
    for line in mesh.admin_get("/stats?filter=outlier_detection.ejections_enforced_total").split(
        "\n"
    ):
        name, _, value = line.partition(": ")
        for cluster in counts:
            if name == f"cluster.{cluster}.outlier_detection.ejections_enforced_total":
                counts[cluster] = int(value)
    return counts


def _ejected(mesh: EdgeMesh) -> list[str]:
    """Endpoints of catalog and order the edge's outlier detection took out of rotation
    (active health checks on a busy machine may time out: that is not what is tested)."""
    return [
        line
        for line in mesh.admin_get("/clusters").splitlines()
        if line.split("::")[0] in ("catalog", "order")
        and "::health_flags::" in line
        and "failed_outlier_check" in line
    ]


def test_through_the_edge_every_crafted_token_is_400_and_nobody_is_ejected(
    mesh: EdgeMesh, tokens: Tokens
) -> None:
    before = _ejections(mesh)
    user = tokens.user("page-token-user")
    for rpc, (kind, path) in LISTS.items():
        for name, token in crafted(kind).items():
            response = request(mesh, "GET", path, query={"pageToken": token}, token=user)
            expected = 431 if len(token) > 8 * 1024 else 400
            assert response.status == expected, (rpc, name, response.status, response.body[:300])
            status = response.json()
            assert status["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0], (rpc, name)
    assert _ejections(mesh) == before
    assert _ejected(mesh) == []
    # Still serving, and real tokens still work.
    first = request(mesh, "GET", "/v1/products", query={"pageSize": "2"}).json()
    following = request(
        mesh, "GET", "/v1/products", query={"pageSize": "2", "pageToken": first["nextPageToken"]}
    )
    assert following.status == 200
    assert following.json()["products"][0]["productId"] not in {
        p["productId"] for p in first["products"]
    }


async def _invalid_argument(call: object) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()


@pytest.mark.parametrize("via", ["edge", "service"])
async def test_over_grpc_every_crafted_token_is_invalid_argument(
    mesh: EdgeMesh, tokens: Tokens, via: str
) -> None:
    def target(service: str) -> str:
        return mesh.target if via == "edge" else mesh.instances[service].target

    user = bearer(tokens.user("page-token-user"))
    before = _ejections(mesh)
    async with (
        aio.insecure_channel(target("catalog")) as catalog_channel,
        aio.insecure_channel(target("order")) as order_channel,
    ):
        catalog = catalog_grpc.CatalogServiceStub(catalog_channel)
        orders = order_grpc.OrderServiceStub(order_channel)
        for token in crafted("catalog.products.v1").values():
            request_ = catalog_pb.ListProductsRequest(page_token=token)
            await _invalid_argument(catalog.ListProducts(request_, timeout=10))
        for token in crafted("order.orders.v1").values():
            request_o = order_pb.ListOrdersRequest(page_token=token)
            await _invalid_argument(orders.ListOrders(request_o, metadata=user, timeout=10))
        # A token of one list is no token of the other.
        page = await catalog.ListProducts(catalog_pb.ListProductsRequest(page_size=1))
        mixed = order_pb.ListOrdersRequest(page_token=page.next_page_token)
        await _invalid_argument(orders.ListOrders(mixed, metadata=user, timeout=10))
    assert _ejections(mesh) == before
    assert _ejected(mesh) == []
