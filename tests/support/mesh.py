"""The whole mesh as real processes, for end-to-end and fault tests.

One embedded Redis (AOF on) and every service as its own ``python -m services <name>``
process on SQLite, wired together like ``scripts/up`` wires them. Unlike ``scripts/up``
the test holds every process: it can SIGKILL one, freeze it, restart it with the same
environment, kill and restart Redis, read each service's JSON log and read (only read)
each service's database. :class:`Shop` is the client side: real channels, real stubs,
tokens from a real login.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import redis
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.common.v1 import money_pb2
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from emporium.payment.v1 import payment_service_pb2 as payment_pb
from emporium.payment.v1 import payment_service_pb2_grpc as payment_grpc
from grpc import aio

from services.mesh.environment import Credentials, MeshEnvironment
from services.mesh.health import wait_serving
from services.mesh.processes import Child, ProcessGroup
from services.platform.bus import dead_letter_stream, stream_name
from services.platform.config import DEFAULT_PORTS
from services.platform.embedded_redis import EmbeddedRedis
from tests.support.ports import shift as ports_shift

ADMIN = "admin"
APPROVE, DECLINE = "4242424242424242", "4000000000000002"
ENDED = frozenset(
    {
        order_pb.ORDER_STATUS_CONFIRMED,
        order_pb.ORDER_STATUS_REJECTED,
        order_pb.ORDER_STATUS_CANCELLED,
        order_pb.ORDER_STATUS_SHIPPED,
    }
)
ADDRESS = order_pb.ShippingAddress(
    name="Grace Hopper",
    line1="1 Navy Yard",
    city="Arlington",
    postal_code="22202",
    country_code="US",
)
PUBLISHERS = ("order", "payment", "inventory", "fulfillment")
_NOT_YET = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_START_TIMEOUT = 90.0  # six interpreters starting on two shared cores


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> None:
    """Polls ``check`` until it holds; fails the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        await asyncio.sleep(every)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC servers do
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Mesh:
    """Running service processes plus their Redis.

    Service ``i`` (in ``DEFAULT_PORTS`` order) serves gRPC on ``port_base + 2i`` and
    metrics on the next port; Redis listens on ``port_base + 12``. Bases below the
    kernel's ephemeral range (32768) never meet a port some other test picked with
    ``bind(0)``, nor one the kernel lent a client while Redis was down.
    """

    data_dir: Path
    port_base: int
    redis: EmbeddedRedis
    admin_password: str
    group: ProcessGroup
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    #: Further processes of a service (``order-2`` → ``order``) and their ports.
    replica_of: dict[str, str] = field(default_factory=dict)
    replica_ports: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Each service account's secret (``order`` → the secret ``svc-order`` logs in with).
    service_secrets: dict[str, str] = field(default_factory=dict)

    def ports(self, name: str) -> tuple[int, int]:
        """The service's (or replica's) gRPC and metrics ports."""
        if name in self.replica_ports:
            return self.replica_ports[name]
        grpc_port = self.port_base + 2 * list(DEFAULT_PORTS).index(name)
        return grpc_port, grpc_port + 1

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.ports(name)[0]}"

    def spawn(self, name: str) -> None:
        """Starts ``name`` (again) with the environment it was first given."""
        service = self.replica_of.get(name, name)
        self.children[name] = self.group.python(name, ["services", service], self.env[name])

    async def serving(self, names: Iterable[str], timeout: float = _START_TIMEOUT) -> None:
        missing = await wait_serving({n: self.target(n) for n in names}, timeout=timeout)
        if missing:
            tails = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in missing)
            raise AssertionError(f"not serving after {timeout:.0f}s: {missing}\n{tails}")

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no drain, whatever was in flight is lost."""
        process = self.children[name].process
        process.kill()
        process.wait(timeout=10)

    def freeze(self, name: str) -> None:
        """SIGSTOP: the process holds its connections but answers nothing."""
        self.children[name].process.send_signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        self.children[name].process.send_signal(signal.SIGCONT)

    async def restart(self, name: str) -> None:
        self.spawn(name)
        await self.serving([name])

    def cpu_seconds(self, name: str) -> float:
        """CPU time (user + system) the service's process has used so far."""
        fields = Path(f"/proc/{self.children[name].process.pid}/stat").read_text()
        utime, stime = fields.rsplit(")", 1)[1].split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")

    def log_records(self, name: str) -> list[dict[str, Any]]:
        """The JSON lines of the service's stdout (across restarts); other lines skipped."""
        records: list[dict[str, Any]] = []
        for line in self.children[name].log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.group.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def rows(self, name: str, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Reads the service's own SQLite database, read-only (what its API does not show)."""
        uri = f"file:{self.data_dir / f'{name}.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as connection:
            return [tuple(row) for row in connection.execute(sql, tuple(params))]

    def unpublished(self) -> dict[str, int]:
        """Outbox rows not yet on the bus, per publishing service."""
        query = "SELECT count(*) FROM outbox WHERE published_at_us IS NULL"
        return {name: int(self.rows(name, query)[0][0]) for name in PUBLISHERS}

    def outbox_event_ids(self, name: str) -> set[str]:
        """The ids of every event the service recorded in its outbox."""
        return {event_id for (event_id,) in self.rows(name, "SELECT event_id FROM outbox")}

    def stream_event_ids(self, context: str) -> set[str]:
        """The event ids on the context's stream (Redis must be up)."""
        with closing(redis.Redis.from_url(self.redis.url)) as client:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream_name(context))
            )
        return {fields[b"event_id"].decode() for _, fields in entries}

    def dead_letters(self, group: str) -> int:
        with closing(redis.Redis.from_url(self.redis.url)) as client:
            return int(client.xlen(dead_letter_stream(group)))

    def stop(self) -> None:
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGCONT)  # a frozen child cannot exit
        self.group.stop_all(grace=10.0)
        self.redis.stop()


@asynccontextmanager
async def running_mesh(
    data_dir: Path,
    port_base: int,
    extra_env: dict[str, str] | None = None,
    databases: dict[str, str] | None = None,
) -> AsyncIterator[Mesh]:
    """Starts Redis and all six services (ports from ``port_base`` on, moved by
    ``EMPORIUM_TEST_PORT_SHIFT``); stops them after. ``databases`` gives some services
    another database URL than their SQLite file (e.g. a fresh PostgreSQL database)."""
    port_base += ports_shift()
    redis = EmbeddedRedis(data_dir / "redis", port=port_base + 2 * len(DEFAULT_PORTS))
    mesh = Mesh(
        data_dir, port_base, redis, secrets.token_urlsafe(12), ProcessGroup(data_dir / "logs")
    )
    ports = [p for n in DEFAULT_PORTS for p in mesh.ports(n)] + [redis.port]
    taken = [p for p in ports if not _port_is_free(p)]
    if taken:
        raise RuntimeError(f"ports {taken} are in use: choose another base than {port_base}")
    try:
        redis.start()
        environment = MeshEnvironment(
            {n: mesh.target(n) for n in DEFAULT_PORTS},
            data_dir,
            Credentials.fresh(ADMIN, mesh.admin_password),
            redis.url,
            extra={"PASSWORD_HASH_COST": "fast", "LOG_LEVEL": "INFO", **(extra_env or {})},
        )
        mesh.service_secrets.update(environment.credentials.service_secrets)
        for name in DEFAULT_PORTS:
            mesh.env[name] = environment.service(
                name, *mesh.ports(name), database_url=(databases or {}).get(name)
            )
            mesh.spawn(name)
        await mesh.serving(DEFAULT_PORTS)
        yield mesh
    finally:
        mesh.stop()


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def card(number: str = APPROVE) -> order_pb.PaymentCard:
    return order_pb.PaymentCard(
        number=number, expiry_month=12, expiry_year=2099, cvc="123", holder_name="Grace Hopper"
    )


def new_traceparent() -> tuple[str, str]:
    """A W3C traceparent a client starts its trace with, and its trace id."""
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    price_minor: int


class Shop:
    """A client of the mesh: an admin and a fresh customer, over real channels."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self._channels = {name: aio.insecure_channel(mesh.target(name)) for name in DEFAULT_PORTS}
        self.identity = identity_grpc.IdentityServiceStub(self._channels["identity"])
        self.catalog = catalog_grpc.CatalogServiceStub(self._channels["catalog"])
        self.inventory = inventory_grpc.InventoryServiceStub(self._channels["inventory"])
        self.payment = payment_grpc.PaymentServiceStub(self._channels["payment"])
        self.orders = order_grpc.OrderServiceStub(self._channels["order"])
        self.admin: tuple[tuple[str, str], ...] = ()
        self.customer: tuple[tuple[str, str], ...] = ()

    async def open(self) -> Shop:
        self.admin = await self._login(ADMIN, self.mesh.admin_password)
        self.customer = await self.new_customer()
        return self

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def _login(self, username: str, password: str) -> tuple[tuple[str, str], ...]:
        request = identity_pb.LoginRequest(username=username, password=password)
        login = await self.identity.Login(request, timeout=10)
        return _auth(login.access_token)

    async def new_customer(self) -> tuple[tuple[str, str], ...]:
        """Registers a new user and returns its credentials (metadata)."""
        name = f"shopper-{uuid.uuid4().hex[:10]}"
        await self.identity.Register(
            identity_pb.RegisterRequest(
                username=name, email=f"{name}@example.com", password="correct-horse-battery"
            ),
            timeout=10,
        )
        return await self._login(name, "correct-horse-battery")

    async def new_product(self, price_minor: int, stock: int) -> Product:
        """A fresh product in the catalog (admin CreateProduct) with ``stock`` in inventory."""
        sku = f"T-{uuid.uuid4().hex[:12].upper()}"
        created = await self.catalog.CreateProduct(
            catalog_pb.CreateProductRequest(
                sku=sku,
                name=f"Test item {sku}",
                category_id="tests",
                price=money_pb2.Money(amount_minor=price_minor, currency_code="EUR"),
            ),
            metadata=self.admin,
            timeout=10,
        )
        await self.inventory.AdjustStock(
            inventory_pb.AdjustStockRequest(sku=sku, delta=stock, reason="test stock"),
            metadata=self.admin,
            timeout=10,
        )
        return Product(created.product.product_id, sku, price_minor)

    async def place(
        self,
        lines: list[tuple[Product, int]],
        number: str = APPROVE,
        *,
        key: str | None = None,
        customer: tuple[tuple[str, str], ...] | None = None,
        traceparent: str | None = None,
    ) -> order_pb.Order:
        metadata = customer or self.customer
        if traceparent is not None:
            metadata = (*metadata, ("traceparent", traceparent))
        response = await self.orders.PlaceOrder(
            order_pb.PlaceOrderRequest(
                idempotency_key=key or uuid.uuid4().hex,
                lines=[
                    order_pb.PlaceOrderLine(product_id=p.product_id, quantity=q) for p, q in lines
                ],
                card=card(number),
                shipping_address=ADDRESS,
            ),
            metadata=metadata,
            timeout=10,
        )
        return response.order

    async def order(
        self, order_id: str, customer: tuple[tuple[str, str], ...] | None = None
    ) -> order_pb.Order:
        request = order_pb.GetOrderRequest(order_id=order_id)
        response = await self.orders.GetOrder(
            request, metadata=customer or self.customer, timeout=10
        )
        return response.order

    async def until(
        self,
        order_ids: Iterable[str],
        statuses: Iterable[int],
        timeout: float,
        customer: tuple[tuple[str, str], ...] | None = None,
    ) -> dict[str, order_pb.Order]:
        """Polls GetOrder until every order has one of ``statuses``; the orders then.

        The order service may be restarting or busy meanwhile: UNAVAILABLE and
        DEADLINE_EXCEEDED count as "not yet".
        """
        wanted, latest = set(statuses), dict.fromkeys(order_ids, order_pb.Order())

        async def reached() -> bool:
            for order_id, seen in latest.items():
                if seen.status in wanted:
                    continue
                try:
                    latest[order_id] = await self.order(order_id, customer)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in _NOT_YET:
                        raise
                    return False
                if latest[order_id].status not in wanted:
                    return False
            return True

        try:
            await eventually(reached, timeout, "orders reach the wanted status", every=0.1)
        except AssertionError as failure:
            late = {o: order_pb.OrderStatus.Name(v.status) for o, v in latest.items()}
            raise AssertionError(f"{failure}; last seen: {late}") from None
        return latest

    async def stock(self, sku: str) -> inventory_pb.StockLevel:
        response = await self.inventory.GetStock(inventory_pb.GetStockRequest(sku=sku), timeout=10)
        return response.stock

    async def get_payment(self, payment_id: str) -> payment_pb.Payment:
        request = payment_pb.GetPaymentRequest(payment_id=payment_id)
        response = await self.payment.GetPayment(request, metadata=self.admin, timeout=10)
        return response.payment


def trace_ids(mesh: Mesh, name: str) -> set[str]:
    """Every trace id the service logged (access lines and handled events)."""
    return {r["trace_id"] for r in mesh.log_records(name) if r.get("trace_id")}


def logged_methods(mesh: Mesh, name: str, trace_id: str) -> set[str]:
    """The RPC methods (or event types) the service logged within one trace."""
    return {
        str(r.get("method") or r.get("event_type"))
        for r in mesh.log_records(name)
        if r.get("trace_id") == trace_id
    }
