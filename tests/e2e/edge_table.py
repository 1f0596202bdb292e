"""The table of exposed RPCs with their REST bindings, and what the calls refer to.

tests/e2e/test_edge_api.py calls every row through the edge, over REST and over gRPC;
docs/edge.md shows the same table.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format

from tests.e2e.edge_support import EdgeMesh, request

APPROVED_CARD = {
    "number": "4242424242424242",
    "expiryMonth": 12,
    "expiryYear": 2039,
    "cvc": "123",
    "holderName": "Alice Example",
}
ADDRESS = {
    "name": "Alice Example",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postalCode": "10115",
    "countryCode": "DE",
}


@dataclass
class World:
    """What the table's requests refer to: a user who logged in through the edge, a
    product, and (with the order flow) an order that went through the saga."""

    mesh: EdgeMesh
    user_id: str
    token: str
    admin: str
    product_id: str
    sku: str
    order_id: str = ""
    payment_id: str = ""


def new_user() -> dict[str, str]:
    name = f"edge-{uuid.uuid4().hex[:10]}"
    return {
        "username": name,
        "email": f"{name}@example.com",
        "password": "correct-horse-battery",
        "displayName": "Edge Tester",
    }


def place_order_body(product_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "idempotencyKey": uuid.uuid4().hex,
        "lines": [{"productId": product_id, "quantity": quantity}],
        "card": APPROVED_CARD,
        "shippingAddress": ADDRESS,
    }


async def settled(mesh: EdgeMesh, order_id: str, token: str) -> dict[str, Any]:
    """The order once the saga has authorized a payment or ended (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        order: dict[str, Any] = request(mesh, "GET", f"/v1/orders/{order_id}", token=token).json()[
            "order"
        ]
        done = order.get("paymentId") and order["status"] != "ORDER_STATUS_PENDING"
        if done or time.monotonic() > deadline:
            return order
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Case:
    rpc: str  # "catalog.GetProduct"
    method: str
    path: str  # the documented binding, e.g. /v1/products/{product_id}
    auth: str = ""  # "", "user" or "admin"
    body: Callable[[World], dict[str, Any]] | None = None
    query: Callable[[World], dict[str, str]] | None = None
    ok: frozenset[int] = frozenset({200})

    @property
    def needs_order(self) -> bool:
        return self.rpc.split(".")[0] in ("order", "payment", "fulfillment")


def login_body(world: World) -> dict[str, Any]:
    user = new_user()
    request(world.mesh, "POST", "/v1/users", body=user)
    return {"username": user["username"], "password": user["password"]}


TABLE = [
    Case("identity.Register", "POST", "/v1/users", body=lambda w: new_user()),
    Case("identity.Login", "POST", "/v1/sessions", body=login_body),
    Case("identity.GetUser", "GET", "/v1/users/{user_id}", auth="user"),
    Case("identity.GetJwks", "GET", "/.well-known/jwks.json"),
    Case("catalog.ListProducts", "GET", "/v1/products", query=lambda w: {"pageSize": "2"}),
    Case("catalog.GetProduct", "GET", "/v1/products/{product_id}"),
    Case(
        "catalog.BatchGetProducts",
        "GET",
        "/v1/products:batchGet",
        query=lambda w: {"productIds": w.product_id},
    ),
    Case(
        "catalog.CreateProduct",
        "POST",
        "/v1/products",
        auth="admin",
        body=lambda w: {
            "sku": f"EDGE-{uuid.uuid4().hex[:8].upper()}",
            "name": "Edge test product",
            "categoryId": "books",
            "price": {"amountMinor": "1234", "currencyCode": "EUR"},
        },
    ),
    Case(
        "catalog.UpdateProduct",
        "PATCH",
        "/v1/products/{product_id}",
        auth="admin",
        body=lambda w: {"description": f"Updated through the edge {uuid.uuid4().hex[:6]}"},
    ),
    Case("catalog.ListCategories", "GET", "/v1/categories"),
    Case("inventory.GetStock", "GET", "/v1/stock/{sku}"),
    Case(
        "inventory.AdjustStock",
        "POST",
        "/v1/stock/{sku}:adjust",
        auth="admin",
        body=lambda w: {"delta": "1", "reason": "edge test"},
    ),
    # Payments are read by the order service and admins (the payment service decides).
    Case("payment.GetPayment", "GET", "/v1/payments/{payment_id}", auth="admin"),
    Case(
        "order.PlaceOrder",
        "POST",
        "/v1/orders",
        auth="user",
        body=lambda w: place_order_body(w.product_id),
    ),
    Case("order.GetOrder", "GET", "/v1/orders/{order_id}", auth="user"),
    Case("order.ListOrders", "GET", "/v1/orders", auth="user"),
    Case(
        "order.CancelOrder",
        "POST",
        "/v1/orders/{order_id}:cancel",
        auth="user",
        body=lambda w: {"reason": "changed my mind"},
        # A confirmed order can no longer be cancelled: the service says so.
        ok=frozenset({200, 400, 409}),
    ),
    Case("order.WatchOrder", "GET", "/v1/orders/{order_id}:watch", auth="user"),
    # The shipment appears when fulfillment has consumed OrderConfirmed.
    Case(
        "fulfillment.GetShipment",
        "GET",
        "/v1/shipments/{order_id}",
        auth="user",
        ok=frozenset({200, 404}),
    ),
]

PARAM = re.compile(r"\{(\w+)\}")


def rest_path(case: Case, world: World) -> str:
    return PARAM.sub(lambda m: str(getattr(world, m.group(1))), case.path)


def token_for(case: Case, world: World) -> str | None:
    return {"user": world.token, "admin": world.admin}.get(case.auth)


def grpc_request(case: Case, world: World) -> Any:
    """The request message the transcoder would build from the REST call."""
    service, method = case.rpc.split(".")
    module = importlib.import_module(f"emporium.{service}.v1.{service}_service_pb2")
    fields: dict[str, Any] = {name: getattr(world, name) for name in PARAM.findall(case.path)}
    if case.query:
        fields.update(
            {k: v.split(",") if k.endswith("Ids") else v for k, v in case.query(world).items()}
        )
    if case.body:
        fields.update(case.body(world))
    return json_format.ParseDict(fields, getattr(module, f"{method}Request")())


SERVICE_ANSWERS = {
    200: {grpc.StatusCode.OK},
    404: {grpc.StatusCode.NOT_FOUND},
    400: {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT},
    409: {grpc.StatusCode.ABORTED},
}
