"""Istio security: mutual TLS everywhere, tokens checked against identity's JWKS, and
AuthorizationPolicies scoped to gRPC methods, evaluated for every RPC of every service."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .authz import Request, allowed
from .chart import REPO, SERVICES, Obj, of_kind

# The design: which RPCs need no token, which only the order service may call (with its
# service token), and which need an admin. Every other RPC needs a user's token.
PUBLIC = {
    "identity": {"Register", "Login", "GetJwks"},
    "catalog": {"ListProducts", "GetProduct", "BatchGetProducts", "ListCategories"},
    "inventory": {"GetStock"},
}
ORDER_ONLY = {
    "payment": {"AuthorizePayment", "CapturePayment", "VoidAuthorization", "RefundPayment"},
    "inventory": {"ReserveStock", "ReleaseReservation", "CommitReservation"},
    "fulfillment": {"CancelShipment"},
}
ADMIN = {"catalog": {"CreateProduct", "UpdateProduct"}, "inventory": {"AdjustStock"}}
# The services the order service calls (the edge calls every service).
ORDER_CALLS = {"identity", "catalog", "inventory", "payment", "fulfillment"}


def _principal(name: str) -> str:
    return f"cluster.local/ns/emporium/sa/emporium-{name}"


EDGE, ORDER = _principal("edge"), _principal("order")
Check = Callable[[str, Request], bool]


def _rpcs(service: str) -> list[str]:
    proto = REPO / "protos" / "emporium" / service / "v1" / f"{service}_service.proto"
    return re.findall(r"^\s*rpc\s+(\w+)\s*\(", proto.read_text(), flags=re.MULTILINE)


def _path(service: str, rpc: str) -> str:
    return f"/emporium.{service}.v1.{service.title()}Service/{rpc}"


@pytest.fixture(scope="module")
def check(default_objects: list[Obj]) -> Check:
    policies = list(of_kind(default_objects, "AuthorizationPolicy").values())
    labels = {
        name: of_kind(default_objects, "Deployment")[f"emporium-{name}"]["spec"]["template"][
            "metadata"
        ]["labels"]
        for name in SERVICES
    }

    def check(service: str, request: Request) -> bool:
        return allowed(policies, labels[service], request)

    return check


@pytest.mark.parametrize("service", SERVICES)
def test_every_rpc_admits_exactly_the_designed_callers(service: str, check: Check) -> None:
    rpcs = _rpcs(service)
    assert rpcs, service
    for rpc in rpcs:
        path = _path(service, rpc)
        anonymous = check(service, Request(path, EDGE))
        user = check(service, Request(path, EDGE, "user-1", ("customer",)))
        admin = check(service, Request(path, EDGE, "admin", ("admin",)))
        order = check(service, Request(path, ORDER, "service:order", ("service",)))
        # (anonymous via the edge, user via the edge, admin via the edge, order + its token)
        if rpc in ORDER_ONLY.get(service, ()):
            expected = (False, False, False, True)
        elif rpc in ADMIN.get(service, ()):
            expected = (False, False, True, False)
        elif rpc in PUBLIC.get(service, ()):
            expected = (True, True, True, service in ORDER_CALLS)
        else:
            expected = (False, True, True, service in ORDER_CALLS)
        assert (anonymous, user, admin, order) == expected, (service, rpc)


def test_order_needs_its_service_token_for_payment(check: Check) -> None:
    path = _path("payment", "AuthorizePayment")
    assert check("payment", Request(path, ORDER, "service:order"))
    assert not check("payment", Request(path, ORDER))
    assert not check("payment", Request(path, ORDER, "user-1", ("customer",)))
    assert not check("payment", Request(path, _principal("catalog"), "service:catalog"))


def test_every_service_fetches_identity_keys_without_a_token(check: Check) -> None:
    for caller in ("edge", *(s for s in SERVICES if s != "identity")):
        assert check("identity", Request(_path("identity", "GetJwks"), _principal(caller)))


def test_callers_outside_the_design_are_refused_even_with_a_token(check: Check) -> None:
    stranger = "cluster.local/ns/elsewhere/sa/default"
    assert not check("catalog", Request(_path("catalog", "ListProducts"), stranger))
    assert not check("order", Request(_path("order", "GetOrder"), stranger, "user-1"))
    assert not check("order", Request(_path("order", "GetOrder"), _principal("catalog"), "u"))


def test_health_is_open_and_reflection_open_to_known_callers(check: Check) -> None:
    for service in SERVICES:
        assert check(service, Request("/grpc.health.v1.Health/Check"))
        reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        assert check(service, Request(reflection, EDGE))
        assert not check(service, Request(reflection, "cluster.local/ns/elsewhere/sa/x"))


def test_prometheus_may_read_metrics(check: Check) -> None:
    prometheus = "cluster.local/ns/monitoring/sa/prometheus"
    for service in SERVICES:
        assert check(service, Request("/metrics", prometheus, port=9090, method="GET"))
        assert not check(service, Request("/metrics", prometheus, port=9090, method="POST"))


def test_mutual_tls_is_strict(default_objects: list[Obj]) -> None:
    peers = of_kind(default_objects, "PeerAuthentication")
    assert peers["emporium-services"]["spec"]["mtls"] == {"mode": "STRICT"}
    assert (
        peers["emporium-services"]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        == "service"
    )
    edge = peers["emporium-edge"]["spec"]
    assert edge["mtls"] == {"mode": "STRICT"}
    assert edge["portLevelMtls"] == {"8080": {"mode": "PERMISSIVE"}}


def test_tokens_are_checked_against_identity_keys_through_the_edge(
    default_objects: list[Obj],
) -> None:
    [rule] = of_kind(default_objects, "RequestAuthentication")["emporium-jwt"]["spec"]["jwtRules"]
    assert rule == {
        "issuer": "emporium-identity",
        "audiences": ["emporium"],
        "jwksUri": "http://emporium-edge.emporium.svc.cluster.local:8080/.well-known/jwks.json",
        "forwardOriginalToken": True,
    }
