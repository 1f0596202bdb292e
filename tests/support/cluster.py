"""Several processes of one service in a test mesh, and clients that spread over them.

:func:`add_replicas` starts more ``order`` processes next to the mesh's first one, on the
same database and with the same environment but their own ports (``order-2``,
``order-3``, …). The mesh then kills, freezes and restarts them by that name like any
other child. :class:`Fleet` holds a channel per replica and picks one per call, as a
load balancer would; a replica that is down answers UNAVAILABLE and the caller tries the
next one.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Any

import grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio
from sqlalchemy.engine import make_url

from services.platform.config import DEFAULT_PORTS
from tests.support.mesh import ADDRESS, Mesh, Product, card

#: Errors that mean "this replica cannot answer now": the caller tries another one.
#: CANCELLED is what a call in flight gets from a process that is shutting down.
ELSEWHERE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)


def add_replicas(mesh: Mesh, service: str, count: int) -> list[str]:
    """Starts ``count`` more processes of ``service``; their names (``order-2``, …).

    Replica ``k`` serves on ``port_base + 12 + 2k`` (gRPC) and the next port (metrics),
    above the mesh's Redis at ``port_base + 12``.
    """
    names: list[str] = []
    first = 2 + sum(1 for n in mesh.replica_of if mesh.replica_of[n] == service)
    for index in range(first, first + count):
        name = f"{service}-{index}"
        grpc_port = mesh.port_base + 2 * len(DEFAULT_PORTS) + 2 * (len(mesh.replica_ports) + 1)
        mesh.replica_of[name] = service
        mesh.replica_ports[name] = (grpc_port, grpc_port + 1)
        mesh.env[name] = {
            **mesh.env[service],
            "GRPC_PORT": str(grpc_port),
            "METRICS_PORT": str(grpc_port + 1),
        }
        mesh.spawn(name)
        names.append(name)
    return names


class Fleet:
    """Order clients over every replica: each call goes to a random replica that answers."""

    def __init__(self, mesh: Mesh, names: Sequence[str], rng: random.Random) -> None:
        self.names = list(names)
        self._rng = rng
        self._channels = {name: aio.insecure_channel(mesh.target(name)) for name in self.names}
        self._stubs = {n: order_grpc.OrderServiceStub(c) for n, c in self._channels.items()}

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def _call(self, method: str, request: Any, metadata: Any, timeout: float) -> Any:
        order = self._rng.sample(self.names, len(self.names))
        last: grpc.aio.AioRpcError | None = None
        for name in itertools.islice(itertools.cycle(order), 3 * len(order)):
            try:
                return await getattr(self._stubs[name], method)(
                    request, metadata=metadata, timeout=timeout
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in ELSEWHERE:
                    raise
                last = exc
        assert last is not None
        raise last

    async def place(
        self,
        lines: Iterable[tuple[Product, int]],
        number: str,
        metadata: tuple[tuple[str, str], ...],
        key: str,
    ) -> order_pb.Order:
        """PlaceOrder with an idempotency key: retried on another replica, one order."""
        request = order_pb.PlaceOrderRequest(
            idempotency_key=key,
            lines=[order_pb.PlaceOrderLine(product_id=p.product_id, quantity=q) for p, q in lines],
            card=card(number),
            shipping_address=ADDRESS,
        )
        response = await self._call("PlaceOrder", request, metadata, 10.0)
        order: order_pb.Order = response.order
        return order

    async def get(self, order_id: str, metadata: tuple[tuple[str, str], ...]) -> order_pb.Order:
        request = order_pb.GetOrderRequest(order_id=order_id)
        response = await self._call("GetOrder", request, metadata, 10.0)
        order: order_pb.Order = response.order
        return order

    async def cancel(
        self, order_id: str, metadata: tuple[tuple[str, str], ...], reason: str = "changed mind"
    ) -> order_pb.Order:
        request = order_pb.CancelOrderRequest(order_id=order_id, reason=reason)
        response = await self._call("CancelOrder", request, metadata, 15.0)
        order: order_pb.Order = response.order
        return order


async def read_rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Reads (only reads) a service's database by its URL: SQLite file or PostgreSQL.

    ``sql`` uses ``?`` placeholders for both.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        uri = f"file:{parsed.database}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as connection:
            return [tuple(row) for row in connection.execute(sql, tuple(params))]
    import asyncpg  # type: ignore[import-untyped]

    numbered = sql
    for index in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${index}", 1)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(numbered, *params)]
    finally:
        await connection.close()
