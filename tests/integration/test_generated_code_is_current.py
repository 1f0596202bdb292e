"""The committed generated code (gen/) matches the protos, and the contracts are complete.

Run with ``PYTHONPATH=gen/python``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "gen"

# context -> (service name, RPC names, event message names), as in the design brief.
CONTRACTS: dict[str, tuple[str, list[str], list[str]]] = {
    "identity": (
        "IdentityService",
        ["Register", "Login", "GetUser", "GetJwks"],
        ["UserRegistered"],
    ),
    "catalog": (
        "CatalogService",
        [
            "ListProducts",
            "GetProduct",
            "BatchGetProducts",
            "CreateProduct",
            "UpdateProduct",
            "ListCategories",
        ],
        ["ProductCreated", "PriceChanged"],
    ),
    "inventory": (
        "InventoryService",
        ["GetStock", "ReserveStock", "ReleaseReservation", "CommitReservation", "AdjustStock"],
        [
            "StockReserved",
            "StockReservationFailed",
            "StockReleased",
            "StockCommitted",
            "StockAdjusted",
        ],
    ),
    "payment": (
        "PaymentService",
        [
            "AuthorizePayment",
            "CapturePayment",
            "VoidAuthorization",
            "RefundPayment",
            "GetPayment",
        ],
        [
            "PaymentAuthorized",
            "PaymentDeclined",
            "PaymentCaptured",
            "PaymentVoided",
            "PaymentRefunded",
        ],
    ),
    "order": (
        "OrderService",
        ["PlaceOrder", "GetOrder", "ListOrders", "CancelOrder", "WatchOrder"],
        ["OrderPlaced", "OrderConfirmed", "OrderRejected", "OrderCancelled", "OrderShipped"],
    ),
    "fulfillment": (
        "FulfillmentService",
        ["GetShipment"],
        ["ShipmentCreated", "ShipmentDispatched"],
    ),
}


def _service_module(context: str) -> ModuleType:
    return importlib.import_module(f"emporium.{context}.v1.{context}_service_pb2")


def _events_module(context: str) -> ModuleType:
    return importlib.import_module(f"emporium.{context}.v1.events_pb2")


def _tree(
    root: Path, subs: tuple[str, ...] = ("python", "descriptor"), prefix: str = "gen/"
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for sub in subs:
        base = root / sub
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            files[prefix + path.relative_to(root).as_posix()] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/generate's output for the tree as it is, in a temporary folder."""
    root = tmp_path_factory.mktemp("fresh")
    env = {
        **os.environ,
        "GEN_OUT": str(root / "gen"),
        "THIRD_PARTY_OUT": str(root / "third_party"),
        "VENV": sys.prefix,
        "PYTHON": sys.executable,
    }
    result = subprocess.run(
        [str(ROOT / "scripts" / "generate")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"scripts/generate failed:\n{result.stdout}\n{result.stderr}"
    return root


def _differing(committed: dict[str, bytes], fresh: dict[str, bytes]) -> list[str]:
    return sorted(
        name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name)
    )


def test_generated_code_is_current(fresh: Path) -> None:
    committed = {**_tree(GEN), **_tree(ROOT, ("third_party",), "")}
    differing = _differing(
        committed, {**_tree(fresh / "gen"), **_tree(fresh, ("third_party",), "")}
    )
    assert not differing, (
        "gen/ or third_party/ is stale; run scripts/generate and commit. Differing files "
        "(missing on one side or different bytes):\n  " + "\n  ".join(differing)
    )


def test_openapi_document_is_current(fresh: Path) -> None:
    if shutil.which("protoc-gen-swagger") is None:
        pytest.skip("protoc-gen-swagger not found: install the Debian package golang-grpc-gateway")
    differing = _differing(_tree(GEN, ("openapi",)), _tree(fresh / "gen", ("openapi",)))
    assert not differing, f"gen/openapi is stale; run scripts/generate and commit: {differing}"


@pytest.mark.parametrize("context", sorted(CONTRACTS))
def test_every_rpc_and_event_exists(context: str) -> None:
    service_name, rpcs, events = CONTRACTS[context]
    file_descriptor = _service_module(context).DESCRIPTOR
    assert service_name in file_descriptor.services_by_name
    service = file_descriptor.services_by_name[service_name]
    assert service.full_name == f"emporium.{context}.v1.{service_name}"
    missing_rpcs = [rpc for rpc in rpcs if rpc not in service.methods_by_name]
    assert not missing_rpcs, f"{service_name} lacks RPCs {missing_rpcs}"

    event_names = _events_module(context).DESCRIPTOR.message_types_by_name
    missing_events = [event for event in events if event not in event_names]
    assert not missing_events, f"emporium.{context}.v1 lacks events {missing_events}"


def test_watch_order_is_server_streaming() -> None:
    method = (
        _service_module("order")
        .DESCRIPTOR.services_by_name["OrderService"]
        .methods_by_name["WatchOrder"]
    )
    assert method.server_streaming
    assert not method.client_streaming
    assert method.output_type.name == "WatchOrderResponse"


@pytest.mark.parametrize("context", sorted(CONTRACTS))
def test_every_method_has_http_annotation(context: str) -> None:
    file_descriptor = _service_module(context).DESCRIPTOR
    missing: list[str] = []
    for service in file_descriptor.services_by_name.values():
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                missing.append(method.full_name)
                continue
            rule = options.Extensions[annotations_pb2.http]
            if not rule.WhichOneof("pattern"):
                missing.append(method.full_name)
    assert not missing, f"methods without google.api.http: {missing}"


def test_read_only_methods_have_no_side_effects() -> None:
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    for context in CONTRACTS:
        for service in _service_module(context).DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                if rule.WhichOneof("pattern") == "get":
                    assert method.GetOptions().idempotency_level == no_side_effects, (
                        method.full_name
                    )


def test_descriptor_set_has_everything_envoy_needs() -> None:
    data = (GEN / "descriptor" / "emporium.binpb").read_bytes()
    names = {f.name for f in descriptor_pb2.FileDescriptorSet.FromString(data).file}
    for required in (
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
        "emporium/common/v1/money.proto",
    ):
        assert required in names
    for context in CONTRACTS:
        assert f"emporium/{context}/v1/{context}_service.proto" in names
        assert f"emporium/{context}/v1/events.proto" in names
