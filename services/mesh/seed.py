"""Demo data for the local mesh: an admin, a demo user, a catalog with stock.

Seeding goes through the public gRPC API like any client, and is idempotent: running
it against a seeded mesh changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable

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
    async with aio.insecure_channel(targets["identity"]) as channel:
        users, token = await _users(identity_grpc.IdentityServiceStub(channel), admin)
    created = {"users": users, "products": 0, "stocked": 0}
    if "catalog" in targets:
        async with aio.insecure_channel(targets["catalog"]) as channel:
            catalog = catalog_grpc.CatalogServiceStub(channel)
            created["products"] = await _products(catalog, token)
    if "inventory" in targets:
        async with aio.insecure_channel(targets["inventory"]) as channel:
            inventory = inventory_grpc.InventoryServiceStub(channel)
            created["stocked"] = await _stock(inventory, token)
    return created


async def _created(call: Awaitable[object]) -> bool:
    """Whether ``call`` created what it asks for; ALREADY_EXISTS (seeded before) is false."""
    try:
        await call
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        return False
    return True


async def _users(
    identity: identity_grpc.IdentityServiceAsyncStub, admin: tuple[str, str]
) -> tuple[int, str]:
    """Registers the demo user; how many users that created, and the admin's token."""
    demo = identity_pb.RegisterRequest(
        username=DEMO_USER[0],
        email="demo@emporium.example",
        password=DEMO_USER[1],
        display_name="Demo Customer",
    )
    users = 1 if await _created(identity.Register(demo)) else 0
    login = await identity.Login(identity_pb.LoginRequest(username=admin[0], password=admin[1]))
    return users, login.access_token


async def _products(catalog: catalog_grpc.CatalogServiceAsyncStub, token: str) -> int:
    """Creates the demo products that are missing; how many it created."""
    count = 0
    for product in DEMO_PRODUCTS:
        request = catalog_pb.CreateProductRequest(
            sku=product.sku,
            name=product.name,
            description=product.description,
            category_id=product.category_id,
            price=money_pb2.Money(amount_minor=product.price_minor, currency_code=product.currency),
        )
        if await _created(catalog.CreateProduct(request, metadata=_auth(token))):
            count += 1
    return count


async def _stock(inventory: inventory_grpc.InventoryServiceAsyncStub, token: str) -> int:
    """Stocks the demo products that have never been stocked; how many it stocked."""
    count = 0
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
        count += 1
    return count
