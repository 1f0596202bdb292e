"""The catalog under test: a seeded database, served by the floor (``benchmarks.floor``,
raw ``sqlite3`` or a constant answer) or by the full service."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from benchmarks.procs import free_port, pin
from benchmarks.tools import taskset
from services.catalog.domain import CreateProduct, Price
from services.catalog.handlers import Catalog
from services.catalog.main import MIGRATIONS
from services.catalog.repository import SqlCatalogTx
from services.mesh.health import wait_serving
from services.mesh.processes import Child, ProcessGroup
from services.platform import auth
from services.platform.db import Database
from services.platform.uow import SqlUnitOfWork

PRODUCT_COUNT = 50
_starts = itertools.count(1)


async def seed_catalog(database_url: str) -> str:
    """Creates the catalog schema and products; returns the id of the one read in the
    benchmark (the middle one, so an index lookup is not trivially the first row)."""
    db = Database(database_url, MIGRATIONS)
    await db.migrate()
    catalog = Catalog(SqlUnitOfWork(db, SqlCatalogTx))
    await catalog.load()
    auth.set_caller(auth.Caller("bench:admin", "bench", frozenset({auth.ADMIN_ROLE})))
    try:
        ids = []
        for index in range(PRODUCT_COUNT):
            product = await catalog.create_product(
                CreateProduct(
                    sku=f"BENCH-{index:04d}",
                    name=f"Benchmark item {index}",
                    description="A product of the benchmark catalog.",
                    category_id="bench",
                    price=Price(1999 + index, "EUR"),
                )
            )
            ids.append(product.product_id)
    finally:
        auth.set_caller(None)
        await db.dispose()
    return ids[len(ids) // 2]


@dataclass
class CatalogServer:
    mode: str  # "full", "sqlite" or "constant"
    child: Child
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.child.process.pid


@asynccontextmanager
async def catalog_server(
    mode: str, database_url: str, group: ProcessGroup, cpus: tuple[int, ...]
) -> AsyncIterator[CatalogServer]:
    """Starts the floor (``mode`` "sqlite" or "constant") or ``python -m services
    catalog`` ("full") pinned to ``cpus`` with taskset, and waits until it serves.

    The full service runs as ``scripts/up`` runs it: JSON access log to its log file,
    metrics endpoint, tracing as configured by default, token verification against
    identity (GetProduct is a public method, so no token and no identity call is needed).
    """

    port = free_port()
    name = f"catalog-{mode}-{next(_starts)}"  # a fresh log file per start
    prefix = [*taskset(cpus), sys.executable, "-m"]
    if mode != "full":
        path = database_url.split(":///", 1)[1]
        child = group.start(
            name, [*prefix, "benchmarks.floor", mode, path, str(port)], {"PYTHONUNBUFFERED": "1"}
        )
    else:
        env = {
            "DATABASE_URL": database_url,
            "GRPC_PORT": str(port),
            "METRICS_PORT": str(free_port()),
            "IDENTITY_TARGET": f"127.0.0.1:{free_port()}",  # nobody: public reads only
            "PYTHONUNBUFFERED": "1",
        }
        child = group.start(name, [*prefix, "services", "catalog"], env)
    try:
        if mode != "full":
            await _wait_for_line(child, "READY", 60)
        elif await wait_serving({"catalog": f"127.0.0.1:{port}"}, timeout=60):
            raise RuntimeError(f"the catalog did not start; see {child.log_path}")
        pin(child.process.pid, cpus)
        yield CatalogServer(mode, child, port)
    finally:
        _stop(child)


async def _wait_for_line(child: Child, prefix: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if child.process.poll() is not None:
            break
        if any(line.startswith(prefix) for line in child.log_path.read_text().splitlines()):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} did not start; see {child.log_path}")


def _stop(child: Child) -> None:
    if child.process.poll() is None:
        child.process.terminate()
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
