"""``scripts/demo``: log in as the demo user, place an order, follow it until it ends.

Talks to a running mesh (``scripts/up``) over gRPC, like any client would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio

from services.mesh.seed import DEMO_USER
from services.platform.config import DEFAULT_PORTS

APPROVED_CARD = "4242424242424242"


def _status(value: int) -> str:
    return order_pb.OrderStatus.Name(value).removeprefix("ORDER_STATUS_")  # type: ignore[arg-type]


Metadata = tuple[tuple[str, str], ...]


async def log_in_demo_user(identity_target: str) -> Metadata:
    """The demo user's bearer token, as call metadata."""
    async with aio.insecure_channel(identity_target) as channel:
        login = await identity_grpc.IdentityServiceStub(channel).Login(
            identity_pb.LoginRequest(username=DEMO_USER[0], password=DEMO_USER[1]), timeout=30
        )
    return (("authorization", f"Bearer {login.access_token}"),)


async def first_products(catalog_target: str, count: int) -> list[str]:
    """The ids of the catalog's first ``count`` products."""
    async with aio.insecure_channel(catalog_target) as channel:
        page = await catalog_grpc.CatalogServiceStub(channel).ListProducts(
            catalog_pb.ListProductsRequest(page_size=count), timeout=30
        )
    return [p.product_id for p in page.products]


async def place_order(
    orders: order_grpc.OrderServiceAsyncStub,
    auth: Metadata,
    product_ids: list[str],
    card: str = APPROVED_CARD,
    quantity: int = 1,
) -> order_pb.Order:
    """Places an order for ``quantity`` of each product, shipped to a demo address."""
    placed = await orders.PlaceOrder(
        order_pb.PlaceOrderRequest(
            idempotency_key=str(uuid.uuid4()),
            lines=[order_pb.PlaceOrderLine(product_id=p, quantity=quantity) for p in product_ids],
            card=order_pb.PaymentCard(
                number=card, expiry_month=12, expiry_year=2099, cvc="123", holder_name="Demo"
            ),
            shipping_address=order_pb.ShippingAddress(
                name="Demo Customer",
                line1="1 Example Street",
                city="Berlin",
                postal_code="10115",
                country_code="DE",
            ),
        ),
        metadata=auth,
        timeout=30,
    )
    return placed.order


async def run(offset: int, card: str, quantity: int) -> int:
    def target(name: str) -> str:
        return f"127.0.0.1:{DEFAULT_PORTS[name][0] + offset}"

    auth = await log_in_demo_user(target("identity"))
    print(f"logged in as {DEMO_USER[0]}")
    products = await first_products(target("catalog"), 2)
    async with aio.insecure_channel(target("order")) as channel:
        orders = order_grpc.OrderServiceStub(channel)
        order = await place_order(orders, auth, products, card, quantity)
        total = order.total
        print(
            f"placed order {order.order_id}: {len(order.lines)} lines, "
            f"total {total.amount_minor / 100:.2f} {total.currency_code}"
        )
        final = order.status
        async for change in orders.WatchOrder(
            order_pb.WatchOrderRequest(order_id=order.order_id), metadata=auth, timeout=60
        ):
            final = change.status
            reason = change.order.rejection_reason
            print(f"  {_status(change.status)}" + (f" ({reason})" if reason else ""))
    return 0 if final == order_pb.ORDER_STATUS_SHIPPED else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--port-offset", type=int, default=0)
    parser.add_argument("--card", default=APPROVED_CARD, help="a test card (docs/payments.md)")
    parser.add_argument("--quantity", type=int, default=1)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.port_offset, args.card, args.quantity))


if __name__ == "__main__":
    sys.exit(main())
