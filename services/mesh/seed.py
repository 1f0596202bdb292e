"""Demo data for the local mesh: an admin, a demo user, a catalog with stock.

Seeding goes through the public gRPC API like any client, and is idempotent: running
it against a seeded mesh changes nothing.
"""

from __future__ import annotations

import grpc
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.common.v1 import money_pb2
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from grpc import aio

from services.catalog.demo import DEMO_PRODUCTS

DEMO_USER = ("demo", "demo-password")


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def seed(targets: dict[str, str], admin: tuple[str, str]) -> dict[str, int]:
    """Seeds through ``targets`` (service → host:port); returns what it created."""
    created = {"users": 0, "products": 0, "stocked": 0}
    async with aio.insecure_channel(targets["identity"]) as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        try:
            await identity.Register(
                identity_pb.RegisterRequest(
                    username=DEMO_USER[0],
                    email="demo@emporium.example",
                    password=DEMO_USER[1],
                    display_name="Demo Customer",
                )
            )
            created["users"] += 1
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        login = await identity.Login(identity_pb.LoginRequest(username=admin[0], password=admin[1]))
    token = login.access_token
    if "catalog" in targets:
        async with aio.insecure_channel(targets["catalog"]) as channel:
            catalog = catalog_grpc.CatalogServiceStub(channel)
            for product in DEMO_PRODUCTS:
                try:
                    await catalog.CreateProduct(
                        catalog_pb.CreateProductRequest(
                            sku=product.sku,
                            name=product.name,
                            description=product.description,
                            category_id=product.category_id,
                            price=money_pb2.Money(
                                amount_minor=product.price_minor,
                                currency_code=product.currency,
                            ),
                        ),
                        metadata=_auth(token),
                    )
                    created["products"] += 1
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                        raise
    if "inventory" in targets:
        async with aio.insecure_channel(targets["inventory"]) as channel:
            inventory = inventory_grpc.InventoryServiceStub(channel)
            for product in DEMO_PRODUCTS:
                try:
                    await inventory.GetStock(inventory_pb.GetStockRequest(sku=product.sku))
                    continue
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                await inventory.AdjustStock(
                    inventory_pb.AdjustStockRequest(
                        sku=product.sku, delta=product.stock, reason="demo data"
                    ),
                    metadata=_auth(token),
                )
                created["stocked"] += 1
    return created
