"""P1: catalog GetProduct over direct gRPC against its floor, measured with h2load.

Three servers answer the same RPC from the same SQLite file, each pinned to one core (the
servers' core, with taskset): the full service (``python -m services catalog``), the floor
(a bare ``grpc.aio`` server reading the row with raw ``sqlite3``) and the floor with a
constant answer (what gRPC and protobuf alone cost). h2load, pinned to the generators'
core, keeps 4 connections x 16 streams in flight. The runs are interleaved (run 1 of every
server, then run 2, …) so slow moments of the machine hit all of them alike; the ratio is
taken run by run, then its median.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import pyspy, tools
from benchmarks.catalog import CatalogServer, catalog_server, seed_catalog
from benchmarks.plan import Log, Plan
from benchmarks.procs import CpuMeter, Layout
from benchmarks.stats import UNKNOWN, Spread
from benchmarks.targets import P1_RATIO
from services.mesh.processes import ProcessGroup

SERVERS = ("full", "sqlite", "constant")
LABELS = {
    "full": "full catalog service",
    "sqlite": "floor: bare grpc.aio + raw sqlite3",
    "constant": "floor: bare grpc.aio, constant answer",
}


@dataclass
class P1Result:
    available: bool = True
    reason: str = ""
    throughput: dict[str, Spread] = field(default_factory=dict)
    mean_ms: dict[str, Spread] = field(default_factory=dict)
    server_cores: dict[str, Spread] = field(default_factory=dict)
    generator_cores: Spread = UNKNOWN
    errors: int = 0
    ratio: Spread = UNKNOWN  # full / sqlite floor, per run
    one_stream: Spread = UNKNOWN  # full service, 1 connection x 1 stream
    one_stream_ms: Spread = UNKNOWN
    product_id: str = ""
    profiles: list[pyspy.Profile] = field(default_factory=list)


async def run(plan: Plan, work: Path, layout: Layout, log: Log, profile: bool) -> P1Result:
    if not tools.have("h2load"):
        return P1Result(available=False, reason=tools.ensure_tools()["h2load"])
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    database_url = f"sqlite+aiosqlite:///{work / 'catalog.db'}"
    product_id = await seed_catalog(database_url)
    body = tools.grpc_body(product_id, work / "getproduct.grpc")
    group = ProcessGroup(work / "logs")
    result = P1Result(product_id=product_id)
    runs: dict[str, list[tools.ToolRun]] = {s: [] for s in SERVERS}
    cores: dict[str, list[float]] = {s: [] for s in SERVERS}
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(catalog_server(mode, database_url, group, layout.servers))
                for mode in SERVERS
            )
        )
        servers: dict[str, CatalogServer] = dict(zip(SERVERS, started, strict=True))
        for mode in SERVERS if plan.prewarm > 0 else ():
            # A fresh Python server speeds up for a while (caches fill): load it first.
            await tools.h2load_grpc(servers[mode].target, body, plan.prewarm, layout.generators)
        for number in range(plan.runs):
            for mode in SERVERS:
                meter = CpuMeter({"server": servers[mode].pid})
                meter.start()
                found = await tools.h2load_grpc(
                    servers[mode].target, body, plan.window, layout.generators, warmup=plan.warmup
                )
                cores[mode].append(meter.stop()["server"])
                runs[mode].append(found)
                if not found.throughput > 0:  # keep what h2load said, for the logs
                    (work / "logs" / f"h2load-{mode}-{number + 1}.txt").write_text(found.output)
                log(f"P1 {mode} run {number + 1}: {found.throughput:,.0f} req/s")
        single = [
            await tools.h2load_grpc(
                servers["full"].target, body, plan.window, layout.generators, 1, 1, plan.warmup
            )
            for _ in range(plan.runs)
        ]
        result.one_stream = Spread.of(r.throughput for r in single)
        result.one_stream_ms = Spread.of(r.mean_ms for r in single)
        for mode in SERVERS:
            result.throughput[mode] = Spread.of(r.throughput for r in runs[mode])
            result.mean_ms[mode] = Spread.of(r.mean_ms for r in runs[mode])
            result.server_cores[mode] = Spread.of(cores[mode])
        result.generator_cores = Spread.of(r.generator_cores for m in SERVERS for r in runs[m])
        result.errors = sum(r.errors for m in SERVERS for r in runs[m])
        result.ratio = Spread.of(
            f.throughput / s.throughput
            for f, s in zip(runs["full"], runs["sqlite"], strict=True)
            if s.throughput > 0
        )
        if profile and plan.profile_seconds > 0 and result.ratio.median < P1_RATIO:
            result.profiles = await _profiles(plan, servers, body, work, layout)
            log("P1: profiled the full service and the floor")
    return result


async def _profiles(
    plan: Plan, servers: dict[str, CatalogServer], body: Path, work: Path, layout: Layout
) -> list[pyspy.Profile]:
    found = []
    for mode in ("full", "sqlite"):
        out = work / f"pyspy-p1-{mode}.txt"
        load = tools.h2load_grpc(
            servers[mode].target, body, plan.profile_seconds + 1, layout.generators, warmup=0.5
        )
        spy = pyspy.record(servers[mode].pid, plan.profile_seconds, out)
        _, raw = await asyncio.gather(load, spy)
        summary = pyspy.summarize(raw, f"catalog GetProduct, {LABELS[mode]} (h2load 4 \u00d7 16)")
        if summary is not None:
            found.append(summary)
    return found
