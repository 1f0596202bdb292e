"""What the edge refuses, each case its own test: bad tokens, bad input, unknown routes,
big bodies, login bursts, client-sent fault headers. Every refusal is a JSON
``google.rpc.Status`` with the mapped HTTP status.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from grpc import aio

from services.identity.tokens import SigningKey
from tests.conftest import Tokens
from tests.e2e.edge_support import EdgeMesh, Response, edge_mesh, request
from tests.support.tokens import bad_tokens, bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> AsyncIterator[EdgeMesh]:
    async with edge_mesh(tmp_path_factory.mktemp("edge-rejections"), signing_key) as running:
        yield running


def assert_status(response: Response, http_status: int, code: int) -> dict[str, Any]:
    """``response`` is a JSON google.rpc.Status with this HTTP status and gRPC code."""
    assert response.status == http_status, response.body
    assert response.header("content-type") == "application/json"
    status: dict[str, Any] = response.json()
    assert status["code"] == code
    assert status["message"]
    return status


@pytest.fixture(scope="module")
def product_id(mesh: EdgeMesh) -> str:
    products = request(mesh, "GET", "/v1/products", query={"pageSize": "1"}).json()["products"]
    return str(products[0]["productId"])


def _order(product_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "idempotencyKey": uuid.uuid4().hex,
        "lines": [{"productId": product_id, "quantity": quantity}],
        "card": {"number": "4242424242424242", "expiryMonth": 12, "expiryYear": 2039, "cvc": "123"},
        "shippingAddress": {
            "name": "B. User",
            "line1": "2 Side Street",
            "city": "Hamburg",
            "postalCode": "20095",
            "countryCode": "DE",
        },
    }


# ---- tokens -----------------------------------------------------------------------------------


def test_a_call_without_a_token_is_401(mesh: EdgeMesh) -> None:
    response = request(mesh, "GET", "/v1/orders")
    assert_status(response, 401, 16)
    assert (response.header("www-authenticate") or "").startswith("Bearer")


@pytest.mark.parametrize(
    "kind", ["expired", "wrong_signature", "alg_none", "hs256_with_public_key", "unknown_kid"]
)
def test_a_bad_token_is_401(mesh: EdgeMesh, signing_key: SigningKey, kind: str) -> None:
    token = bad_tokens(signing_key, "user-1")[kind]
    assert_status(request(mesh, "GET", "/v1/orders", token=token), 401, 16)


def test_a_token_for_another_audience_is_403(mesh: EdgeMesh, signing_key: SigningKey) -> None:
    token = bad_tokens(signing_key, "user-1")["wrong_audience"]
    assert_status(request(mesh, "GET", "/v1/orders", token=token), 403, 7)


def test_a_valid_token_passes_the_edge_and_reaches_the_service(
    mesh: EdgeMesh, tokens: Tokens
) -> None:
    response = request(mesh, "GET", f"/v1/users/{uuid.uuid4()}", token=tokens.user("user-1"))
    # The service itself answers: user-1 may read only its own profile.
    assert_status(response, 404, 5)
    assert response.header("x-envoy-upstream-service-time") is not None


def test_user_a_reading_user_bs_order_gets_404(
    mesh: EdgeMesh, tokens: Tokens, product_id: str
) -> None:
    placed = request(mesh, "POST", "/v1/orders", body=_order(product_id), token=tokens.user("b"))
    assert placed.status == 200, placed.body
    order_id = placed.json()["order"]["orderId"]
    assert request(mesh, "GET", f"/v1/orders/{order_id}", token=tokens.user("b")).status == 200
    response = request(mesh, "GET", f"/v1/orders/{order_id}", token=tokens.user("a"))
    assert_status(response, 404, 5)


# ---- bad input -------------------------------------------------------------------------------


def test_malformed_json_is_400(mesh: EdgeMesh, tokens: Tokens) -> None:
    response = request(
        mesh,
        "POST",
        "/v1/orders",
        body='{"lines": [{"productId": ',
        headers={"content-type": "application/json"},
        token=tokens.user("a"),
    )
    assert_status(response, 400, 3)


def test_an_unknown_query_parameter_is_400(mesh: EdgeMesh) -> None:
    response = request(mesh, "GET", "/v1/products", query={"colour": "red"})
    status = assert_status(response, 400, 3)
    assert "colour" in status["message"]


def test_an_unknown_path_is_404(mesh: EdgeMesh) -> None:
    assert_status(request(mesh, "GET", "/v1/wishlists"), 404, 5)


def test_service_only_methods_are_not_reachable_through_the_edge(
    mesh: EdgeMesh, tokens: Tokens
) -> None:
    """ReserveStock is the saga's, not the public's: even the order service's own token
    cannot call it through the edge."""
    body = {"orderId": "o-1", "lines": [{"sku": "BK-DDD-BLUE", "quantity": 1}]}
    response = request(mesh, "POST", "/v1/reservations", body=body, token=tokens.service("order"))
    assert_status(response, 404, 5)


def test_a_negative_quantity_is_400_naming_the_field(
    mesh: EdgeMesh, tokens: Tokens, product_id: str
) -> None:
    response = request(
        mesh, "POST", "/v1/orders", body=_order(product_id, quantity=-1), token=tokens.user("a")
    )
    status = assert_status(response, 400, 3)
    [details] = status["details"]
    assert details["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    fields = {violation["field"] for violation in details["fieldViolations"]}
    assert fields == {"lines[0].quantity"}


def test_a_body_over_the_size_limit_is_413(mesh: EdgeMesh, tokens: Tokens) -> None:
    big = {"idempotencyKey": "x" * (mesh.spec.max_request_bytes + 1)}
    response = request(mesh, "POST", "/v1/orders", body=big, token=tokens.user("a"))
    assert_status(response, 413, 8)


# ---- limits and client-controlled headers ------------------------------------------------------


def test_a_login_burst_from_one_client_is_429_and_other_clients_still_log_in(
    mesh: EdgeMesh,
) -> None:
    user = {"username": f"burst-{uuid.uuid4().hex[:8]}", "password": "correct-horse-battery"}
    registered = request(
        mesh, "POST", "/v1/users", body={**user, "email": f"{user['username']}@example.com"}
    )
    assert registered.status == 200, registered.body
    wrong = {**user, "password": "guess-guess-guess"}
    burst = mesh.spec.login_limit.burst
    attempts = [
        request(mesh, "POST", "/v1/sessions", body=wrong, source="127.0.0.60")
        for _ in range(burst + 1)
    ]
    assert [r.status for r in attempts[:burst]] == [401] * burst
    assert_status(attempts[burst], 429, 8)
    # The limit is per client address: another client is not locked out.
    other = request(mesh, "POST", "/v1/sessions", body=user, source="127.0.0.61")
    assert other.status == 200, other.body


def test_a_client_sent_fault_header_has_no_effect(mesh: EdgeMesh) -> None:
    started = time.monotonic()
    response = request(
        mesh,
        "GET",
        "/v1/categories",
        headers={
            "x-envoy-fault-abort-request": "503",
            "x-envoy-fault-abort-request-percentage": "100",
            "x-envoy-fault-delay-request": "3000",
            "x-envoy-fault-delay-request-percentage": "100",
        },
    )
    assert response.status == 200, response.body
    assert response.json()["categories"]
    assert time.monotonic() - started < 2.0


def test_a_client_cannot_shorten_the_edge_timeout(mesh: EdgeMesh) -> None:
    response = request(
        mesh, "GET", "/v1/categories", headers={"x-envoy-upstream-rq-timeout-ms": "1"}
    )
    assert response.status == 200, response.body


async def test_service_only_methods_are_unimplemented_for_grpc_clients_too(
    mesh: EdgeMesh, tokens: Tokens
) -> None:
    async with aio.insecure_channel(mesh.target) as channel:
        stub = inventory_grpc.InventoryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            await stub.ReserveStock(
                inventory_pb.ReserveStockRequest(order_id="o-1"),
                metadata=bearer(tokens.service("order")),
                timeout=5,
            )
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert raised.value.details() == "no such method at the edge"
