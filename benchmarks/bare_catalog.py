"""The bare catalog server: ``python -m benchmarks.bare_catalog DATABASE_URL PORT``.

The same :class:`CatalogServicer` over the same :class:`Catalog` use cases and database as
the real service, on a plain ``grpc.aio`` server with the same channel options and no
interceptors: no tracing, access log, metrics or authentication, no health or
reflection. The platform benchmark compares it with ``python -m services catalog``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from emporium.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from grpc import aio

from services.catalog.handlers import Catalog
from services.catalog.main import MIGRATIONS
from services.catalog.service import CatalogServicer
from services.platform.db import Database

#: ServiceHost's server options, so the only difference is the interceptor chain.
OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


async def serve(database_url: str, port: int) -> None:
    db = Database(database_url, MIGRATIONS)
    await db.migrate()
    server = aio.server(options=OPTIONS)
    pb_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(Catalog(db)), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {bound}", flush=True)
    await stop.wait()
    await server.stop(1.0)
    await db.dispose()


def main() -> None:
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))


if __name__ == "__main__":
    main()
