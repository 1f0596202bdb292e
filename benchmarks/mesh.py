"""The whole mesh for the order and footprint benchmarks: Redis and the six services as
processes (as ``scripts/up`` runs them), on SQLite files or on PostgreSQL databases.

Unlike ``scripts/up`` this keeps the time each service took to report SERVING, and can
restart one service under cProfile.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.common.v1 import money_pb2
from emporium.identity.v1 import identity_service_pb2 as identity_pb
from emporium.identity.v1 import identity_service_pb2_grpc as identity_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from grpc import aio
from sqlalchemy.engine import make_url

from benchmarks.procs import cpu_seconds, free_port
from services.mesh.environment import Credentials, MeshEnvironment
from services.mesh.health import check
from services.mesh.processes import Child, ProcessGroup
from services.platform.config import SERVICES
from services.platform.embedded_redis import EmbeddedRedis

ADMIN = "admin"
CUSTOMERS = 8
STOCK = 1_000_000_000


@dataclass
class Mesh:
    work: Path
    backend: str  # "sqlite" or "postgres"
    group: ProcessGroup
    redis: EmbeddedRedis
    admin_password: str
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    #: Seconds from the first spawn until each service reported SERVING.
    serving_after: dict[str, float] = field(default_factory=dict)
    #: CPU seconds each service had used by the time it reported SERVING.
    startup_cpu: dict[str, float] = field(default_factory=dict)
    cold_start: float = 0.0
    product_id: str = ""
    tokens: list[str] = field(default_factory=list)

    def target(self, name: str) -> str:
        return f"127.0.0.1:{self.env[name]['GRPC_PORT']}"

    @property
    def pids(self) -> dict[str, int]:
        pids = {name: child.process.pid for name, child in self.children.items()}
        if self.redis.pid is not None:
            pids["redis"] = self.redis.pid
        return pids

    def spawn(self, name: str) -> None:
        command = [sys.executable, "-m", "services", name]
        self.children[name] = self.group.start(name, command, self.env[name])

    def stop_service(self, name: str) -> None:
        process = self.children[name].process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        self.group.stop_all(grace=15.0)
        self.redis.stop()


def _databases(backend: str, postgres_url: str | None, work: Path) -> dict[str, str]:
    if backend == "sqlite":
        return {name: f"sqlite+aiosqlite:///{work / f'{name}.db'}" for name in SERVICES}
    assert postgres_url is not None
    admin = make_url(postgres_url)
    return {
        name: admin.set(database=f"emporium_bench_{name}").render_as_string(hide_password=False)
        for name in SERVICES
    }


async def recreate_postgres_databases(postgres_url: str, *, create: bool = True) -> None:
    """Drops ``emporium_bench_<service>`` for every service and (by default) creates them
    afresh; ``create=False`` only cleans up after the run."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(postgres_url).set(drivername="postgresql")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        for name in SERVICES:
            database = f"emporium_bench_{name}"
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            if create:
                await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


async def _wait_all_serving(mesh: Mesh, started: float, timeout: float) -> list[str]:
    pending = dict.fromkeys(mesh.children)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        results = await asyncio.gather(*(check(mesh.target(n), 0.5) for n in pending))
        now = time.monotonic()
        for name, ok in zip(list(pending), results, strict=True):
            if ok:
                del pending[name]
                mesh.serving_after[name] = now - started
                mesh.startup_cpu[name] = cpu_seconds(mesh.children[name].process.pid)
            elif mesh.children[name].process.poll() is not None:
                return [name]
        if pending:
            await asyncio.sleep(0.02)
    return sorted(pending)


async def start_mesh(
    work: Path, backend: str, postgres_url: str | None = None, timeout: float = 120.0
) -> Mesh:
    """Starts Redis and every service on fresh databases; waits until all serve.

    ``cold_start`` is the time from starting Redis to the last service's SERVING; the
    services run with their production defaults (INFO access logs, standard password
    hashing, tracing on).
    """
    if backend == "postgres":
        assert postgres_url is not None
        await recreate_postgres_databases(postgres_url)
    databases = _databases(backend, postgres_url, work)
    mesh = Mesh(
        work=work,
        backend=backend,
        group=ProcessGroup(work / "logs"),
        redis=EmbeddedRedis(work / "redis"),
        admin_password=secrets.token_urlsafe(12),
    )
    ports = {name: (free_port(), free_port()) for name in SERVICES}
    started = time.monotonic()
    mesh.redis.start()
    environment = MeshEnvironment(
        {n: f"127.0.0.1:{ports[n][0]}" for n in SERVICES},
        work,
        Credentials.fresh(ADMIN, mesh.admin_password),
        mesh.redis.url,
    )
    for name in SERVICES:
        mesh.env[name] = environment.service(name, *ports[name], database_url=databases[name])
        mesh.spawn(name)
    missing = await _wait_all_serving(mesh, started, timeout)
    if missing:
        mesh.stop()
        logs = ", ".join(str(work / "logs" / f"{n}.log") for n in missing)
        raise RuntimeError(f"not serving after {timeout:.0f}s: {missing}; see {logs}")
    mesh.cold_start = max(mesh.serving_after.values())
    return mesh


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def seed(mesh: Mesh, customers: int = CUSTOMERS) -> None:
    """A product with (practically) unlimited stock and ``customers`` logged-in users."""
    async with aio.insecure_channel(mesh.target("identity")) as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        login = identity_pb.LoginRequest(username=ADMIN, password=mesh.admin_password)
        admin = (await identity.Login(login, timeout=30)).access_token
        for _ in range(customers):
            name = f"bench-{uuid.uuid4().hex[:10]}"
            password = secrets.token_urlsafe(12)
            await identity.Register(
                identity_pb.RegisterRequest(
                    username=name, email=f"{name}@bench.example", password=password
                ),
                timeout=30,
            )
            login = identity_pb.LoginRequest(username=name, password=password)
            mesh.tokens.append((await identity.Login(login, timeout=30)).access_token)
    sku = f"BENCH-{uuid.uuid4().hex[:8].upper()}"
    async with aio.insecure_channel(mesh.target("catalog")) as channel:
        created = await catalog_grpc.CatalogServiceStub(channel).CreateProduct(
            catalog_pb.CreateProductRequest(
                sku=sku,
                name="Benchmark item",
                description="Ordered by the benchmark.",
                category_id="bench",
                price=money_pb2.Money(amount_minor=1999, currency_code="EUR"),
            ),
            metadata=_bearer(admin),
            timeout=30,
        )
    mesh.product_id = created.product.product_id
    async with aio.insecure_channel(mesh.target("inventory")) as channel:
        await inventory_grpc.InventoryServiceStub(channel).AdjustStock(
            inventory_pb.AdjustStockRequest(sku=sku, delta=STOCK, reason="benchmark"),
            metadata=_bearer(admin),
            timeout=30,
        )


async def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot host the benchmark databases (None: it can)."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    await connection.close()
    return None
