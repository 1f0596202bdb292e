"""The P1 floor: ``python -m benchmarks.floor MODE SQLITE_FILE PORT``.

A bare ``grpc.aio`` server answering CatalogService/GetProduct with nothing between the
socket and the database: no interceptors, no ORM, no thread hop. ``MODE`` is ``sqlite``
(every call reads the row with the standard library's ``sqlite3``, one prepared statement
on one connection, on the event loop's thread) or ``constant`` (the same answer built once:
what gRPC and protobuf alone cost). The full catalog service is judged against the first.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys

import grpc
from emporium.catalog.v1 import catalog_service_pb2 as pb
from emporium.common.v1 import money_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

#: The full service's server options, so the difference is what runs per call.
OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]

SERVICE = "emporium.catalog.v1.CatalogService"
_SELECT = (
    "SELECT product_id, sku, name, description, category_id, price_minor, currency_code, "
    "image_url, active, created_at_us, updated_at_us FROM products WHERE product_id = ?"
)


def _timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1000)


def _product(row: tuple[object, ...]) -> pb.Product:
    (pid, sku, name, description, category, price, currency, image, active, created, updated) = row
    return pb.Product(
        product_id=str(pid),
        sku=str(sku),
        name=str(name),
        description=str(description),
        category_id=str(category),
        price=money_pb2.Money(amount_minor=int(str(price)), currency_code=str(currency)),
        image_url=str(image),
        active=bool(active),
        create_time=_timestamp(int(str(created))),
        update_time=_timestamp(int(str(updated))),
    )


class FloorServicer:
    def __init__(self, mode: str, path: str) -> None:
        self.mode = mode
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.constant: pb.GetProductResponse | None = None

    async def get_product(
        self, request: pb.GetProductRequest, context: aio.ServicerContext[object, object]
    ) -> pb.GetProductResponse:
        if self.constant is not None:
            return self.constant
        row = self.db.execute(_SELECT, (request.product_id,)).fetchone()
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such product")
        answer = pb.GetProductResponse(product=_product(row))
        if self.mode == "constant":
            self.constant = answer
        return answer


async def serve(mode: str, path: str, port: int) -> None:
    server = aio.server(options=OPTIONS)
    servicer = FloorServicer(mode, path)
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.get_product,
        request_deserializer=pb.GetProductRequest.FromString,
        response_serializer=pb.GetProductResponse.SerializeToString,
    )
    # Registered as the generated code registers it; the other RPCs answer UNIMPLEMENTED.
    service = grpc.method_handlers_generic_handler(SERVICE, {"GetProduct": handler})
    server.add_generic_rpc_handlers((service,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {bound}", flush=True)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    mode, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode not in ("sqlite", "constant"):
        raise SystemExit(f"mode must be sqlite or constant, not {mode!r}")
    asyncio.run(serve(mode, path, port))


if __name__ == "__main__":
    main()
