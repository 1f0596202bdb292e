"""Section 5: memory and start-up. Whole-mesh cold starts (fresh databases, so each
service creates its whole schema), resident memory per process when idle, and — when a
figure misses its target — where the memory and the start-up time go."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.mesh import Mesh, seed, start_mesh
from benchmarks.plan import Log, Plan
from benchmarks.procs import rss_mb
from benchmarks.stats import UNKNOWN, Spread
from services.platform.config import SERVICES

SETTLE_SECONDS = 2.0

#: Imports in the order a service makes them, to see what each layer adds to RSS; the
#: layers before the last two are what a service on SQLite loads.
IMPORT_LAYERS: tuple[tuple[str, str], ...] = (
    ("Python interpreter", ""),
    (
        "grpc + protobuf + generated code",
        "import grpc, grpc.aio, emporium.order.v1.order_service_pb2_grpc",
    ),
    ("SQLAlchemy Core + its SQLite dialect", "import sqlalchemy.dialects.sqlite.pysqlite"),
    ("OpenTelemetry (SDK)", "import services.platform.telemetry"),
    (
        "the rest of the platform (Redis, JWT, Prometheus, …)",
        "import services.platform.runner, services.platform.consumer, services.platform.relay",
    ),
    ("the order service's own modules", "import services.order.main"),
    ("on PostgreSQL: asyncpg", "import asyncpg, sqlalchemy.dialects.postgresql.asyncpg"),
    (
        "only to upgrade a schema: Alembic + SQLAlchemy's asyncio engine",
        "import alembic.runtime.environment, alembic.script, sqlalchemy.ext.asyncio",
    ),
)

_PROBE = """
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
out = []
for label, code in json.loads(sys.argv[1]):
    start = time.perf_counter()
    exec(code)
    out.append([label, rss(), time.perf_counter() - start])
print(json.dumps(out))
"""


@dataclass
class FootprintResult:
    cold_start: Spread = UNKNOWN
    serving_after: dict[str, Spread] = field(default_factory=dict)
    startup_cpu: dict[str, Spread] = field(default_factory=dict)
    idle_rss: dict[str, Spread] = field(default_factory=dict)
    loaded_rss: dict[str, float] = field(default_factory=dict)  # peak during the order run
    loaded_at: str = ""
    layers: list[tuple[str, float, float]] = field(default_factory=list)  # label, MB, s
    interpreter_start: float = 0.0


async def cold_starts(plan: Plan, work: Path, log: Log) -> tuple[FootprintResult, Mesh]:
    """Starts the mesh ``plan.cold_starts`` times on fresh SQLite databases; returns the
    figures and the last mesh, still running and seeded (the order benchmark uses it)."""
    result = FootprintResult()
    starts: list[float] = []
    serving: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    mesh: Mesh | None = None
    for number in range(plan.cold_starts):
        mesh = await start_mesh(work / f"mesh-sqlite-{number + 1}", "sqlite")
        try:
            starts.append(mesh.cold_start)
            for name in SERVICES:
                serving.setdefault(name, []).append(mesh.serving_after[name])
                cpu.setdefault(name, []).append(mesh.startup_cpu[name])
            await seed(mesh, plan.customers)
            await asyncio.sleep(SETTLE_SECONDS)
            for name, pid in mesh.pids.items():
                rss.setdefault(name, []).append(rss_mb(pid))
        except BaseException:
            mesh.stop()
            raise
        log(f"footprint: cold start {number + 1}: {mesh.cold_start:.2f} s")
        if number + 1 < plan.cold_starts:
            mesh.stop()
    assert mesh is not None
    result.cold_start = Spread.of(starts)
    result.serving_after = {n: Spread.of(v) for n, v in serving.items()}
    result.startup_cpu = {n: Spread.of(v) for n, v in cpu.items()}
    result.idle_rss = {n: Spread.of(v) for n, v in rss.items()}
    return result, mesh


async def breakdown(result: FootprintResult) -> None:
    """What each layer of imports adds to memory and start-up time, in a fresh interpreter."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "pass", stdout=asyncio.subprocess.DEVNULL
    )
    await process.wait()
    result.interpreter_start = time.perf_counter() - started
    layers = json.dumps([[label, code] for label, code in IMPORT_LAYERS])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, layers, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    rows = json.loads(output)
    previous = 0.0
    for label, rss, seconds in rows:
        result.layers.append((label, rss - previous, seconds))
        previous = rss
