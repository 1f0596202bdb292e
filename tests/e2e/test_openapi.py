"""The OpenAPI document the edge serves at /openapi.json says what the edge really does.

Against the mesh of ``scripts/up``: the document is the committed gen/openapi/emporium.json, a
valid OpenAPI 3.1 document with exactly the REST routes the edge exposes, JSON names for
query parameters, bearer auth where the edge wants a token, and ``google.rpc.Status`` errors;
the edge's answers match it. Also the regressions schemathesis found (test_schemathesis.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from services.edge.contract import DESCRIPTOR, load_rpcs
from services.edge.policy import load_policy
from services.edge.routes import OPENAPI_PATH
from tests.e2e.conftest import Mesh
from tests.e2e.openapi_support import call, user_token

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "gen" / "openapi" / "emporium.json"
POLICY = load_policy()
RPCS = [
    rpc
    for rpc in load_rpcs(DESCRIPTOR.read_bytes())
    if rpc.method not in POLICY.service_methods.get(rpc.context, frozenset())
]


@pytest.fixture(scope="module")
def served(mesh: Mesh) -> dict[str, Any]:
    reply = call(mesh, "GET", OPENAPI_PATH)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.body == DOCUMENT.read_bytes(), "the edge serves gen/openapi/emporium.json"
    document: dict[str, Any] = reply.json()
    return document


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        op["operationId"]: {**op, "path": path, "verb": verb}
        for path, item in document["paths"].items()
        for verb, op in item.items()
    }


def test_the_document_is_valid_openapi_3_1(served: dict[str, Any]) -> None:
    validate(served)
    assert served["openapi"] == "3.1.0"


def test_every_exposed_rest_route_is_in_the_document_and_nothing_else(
    served: dict[str, Any],
) -> None:
    documented = {
        (op["verb"].upper(), op["path"], op["x-grpc-method"]) for op in _operations(served).values()
    }
    routed = {(rpc.http_method, rpc.http_path, rpc.path) for rpc in RPCS}
    assert documented == routed


def test_auth_is_what_the_edge_asks_for(served: dict[str, Any]) -> None:
    operations = _operations(served)
    for rpc in RPCS:
        op = operations[f"{rpc.context}.{rpc.method}"]
        public = rpc.method in POLICY.public_methods.get(rpc.context, frozenset())
        assert op["security"] == ([] if public else [{"bearerAuth": []}]), op["operationId"]
        if rpc.method in POLICY.admin_methods.get(rpc.context, frozenset()):
            assert op["x-emporium-roles"] == ["admin"]
    assert served["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_query_parameters_have_json_names_and_the_edge_takes_them(
    mesh: Mesh, served: dict[str, Any]
) -> None:
    params = [p["name"] for p in served["paths"]["/v1/products"]["get"]["parameters"]]
    assert params == ["pageSize", "pageToken", "categoryId", "query"]
    reply = call(mesh, "GET", "/v1/products?pageSize=2&categoryId=books")
    assert reply.status == 200, reply.body
    _conforms(served, reply.json(), "catalog.ListProductsResponse")


def _conforms(document: dict[str, Any], value: Any, schema: str) -> None:
    resolver_doc = {"components": document["components"], "$ref": f"#/components/schemas/{schema}"}
    jsonschema.Draft202012Validator(resolver_doc).validate(value)


def test_an_error_is_the_documented_status(mesh: Mesh, served: dict[str, Any]) -> None:
    reply = call(mesh, "GET", "/v1/products?pageSize=-1")
    assert reply.status == 400
    _conforms(served, reply.json(), "google.rpc.Status")
    assert reply.json()["details"][0]["@type"].endswith("google.rpc.BadRequest")


def test_watch_order_streams_one_documented_object_per_line(
    mesh: Mesh, served: dict[str, Any]
) -> None:
    token = user_token(mesh)
    auth = {"authorization": f"Bearer {token}"}
    product = call(mesh, "GET", "/v1/products?pageSize=1").json()["products"][0]["productId"]
    placed = call(
        mesh,
        "POST",
        "/v1/orders",
        {
            "idempotencyKey": str(uuid.uuid4()),
            "lines": [{"productId": product, "quantity": 1}],
            "card": {
                "number": "4242424242424242",
                "expiryMonth": 12,
                "expiryYear": 2099,
                "cvc": "123",
            },
            "shippingAddress": {
                "name": "Ada",
                "line1": "1 Main St",
                "city": "Berlin",
                "postalCode": "10115",
                "countryCode": "DE",
            },
        },
        auth,
    )
    assert placed.status == 200, placed.body
    order_id = placed.json()["order"]["orderId"]
    watched = call(mesh, "GET", f"/v1/orders/{order_id}:watch", headers=auth, timeout=60)
    assert watched.status == 200
    assert watched.headers["content-type"] == "application/json"
    lines = [json.loads(line) for line in watched.body.decode().splitlines() if line.strip()]
    assert lines, "no message in the stream"
    for line in lines:
        _conforms(served, line, "order.WatchOrderResponse")
    assert lines[-1]["order"]["status"] in ("ORDER_STATUS_SHIPPED", "ORDER_STATUS_REJECTED")


# Regressions found by schemathesis: headers (a long URL counts) too large for the services'
# gRPC metadata answered 429 RESOURCE_EXHAUSTED with the header sizes in the message; the
# edge now refuses them itself with 431 and a JSON google.rpc.Status.


@pytest.mark.parametrize("length", [9_000, 20_000, 70_000])
def test_a_too_long_url_is_431_with_a_status(
    mesh: Mesh, served: dict[str, Any], length: int
) -> None:
    reply = call(mesh, "GET", "/v1/products?query=" + "a" * length)
    assert reply.status == 431
    _conforms(served, reply.json(), "google.rpc.Status")
    assert reply.json()["code"] == 3


def test_too_large_headers_are_431_with_a_status(mesh: Mesh, served: dict[str, Any]) -> None:
    reply = call(mesh, "GET", "/v1/products", headers={"x-padding": "a" * 20_000})
    assert reply.status == 431
    _conforms(served, reply.json(), "google.rpc.Status")


def test_a_long_query_under_the_limit_reaches_the_service(mesh: Mesh) -> None:
    """7 KB of query: the service's own validation answers, not gRPC's metadata limit."""
    reply = call(mesh, "GET", "/v1/products?query=" + "a" * 7_000)
    assert reply.status == 400
    assert "query" in reply.json()["message"]


def test_the_api_reference_page_is_served_at_docs(mesh: Mesh) -> None:
    reply = call(mesh, "GET", "/docs/")
    if reply.status == 404:
        pytest.skip("no storefront build (needs Node.js and `npm ci --prefix clients`)")
    assert reply.status == 200
    assert b"swagger-ui-bundle.js" in reply.body
    assert call(mesh, "GET", "/docs/swagger-ui-bundle.js").status == 200
    assert call(mesh, "GET", "/docs").status == 301
