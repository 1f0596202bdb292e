"""Sections 1 and 2: what the platform and the edge cost on one read (GetProduct).

Four ways of serving the same seeded catalog run side by side: the bare server (same
servicer, no interceptors), the full service (``python -m services catalog``), and the
full service behind the real Envoy edge, called over REST/JSON and over gRPC. The runs
are interleaved (run 1 of every way, then run 2, …) so slow moments of the machine hit
all of them alike. Each way gets its closed-loop maximum, then the same open-loop rates
(fractions of the full service's maximum), which also draw the latency curve.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import external, profiling
from benchmarks.catalog import catalog_server, seed_catalog
from benchmarks.loadgen import Generators, Load, Result
from benchmarks.plan import Plan
from benchmarks.procs import CpuMeter, Layout, free_port, pin_tree
from benchmarks.stats import UNKNOWN, Spread
from services.edge.spec import EdgeSpec, local_spec
from services.mesh import edge
from services.mesh.processes import Child, ProcessGroup

WAYS = ("bare", "full", "edge-rest", "edge-grpc")
LABELS = {
    "bare": "bare grpc.aio server",
    "full": "full service, direct gRPC",
    "edge-rest": "REST/JSON through Envoy",
    "edge-grpc": "gRPC through Envoy",
}


@dataclass
class Point:
    """One way at one offered rate (or at its closed-loop maximum: ``offered`` 0)."""

    offered: float
    throughput: Spread
    p50_ms: Spread
    p99_ms: Spread
    errors: int
    server_cores: Spread
    envoy_cores: Spread
    generator_cores: Spread
    lag_p99_ms: Spread


@dataclass
class ReadsResult:
    maximum: dict[str, Point] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    half_rate: float = 0.0
    at_rate: dict[str, list[Point]] = field(default_factory=dict)
    platform_ratio: Spread = UNKNOWN
    added_p50_ms: dict[str, Spread] = field(default_factory=dict)
    added_p99_ms: dict[str, Spread] = field(default_factory=dict)
    envoy_cores_per_k: dict[str, Spread] = field(default_factory=dict)
    external: list[external.ExternalResult] = field(default_factory=list)
    envoy_available: bool = True
    layout: str = ""
    generator: str = ""
    product_id: str = ""

    def at_half(self, way: str) -> Point | None:
        points = self.at_rate.get(way, [])
        for point in points:
            if point.offered == self.half_rate:
                return point
        return None


@dataclass
class _Sample:
    result: Result
    server_cores: float
    envoy_cores: float


def _point(offered: float, samples: list[_Sample]) -> Point:
    return Point(
        offered=offered,
        throughput=Spread.of(s.result.throughput for s in samples),
        p50_ms=Spread.of(s.result.p50_ms for s in samples),
        p99_ms=Spread.of(s.result.p99_ms for s in samples),
        errors=sum(s.result.errors for s in samples),
        server_cores=Spread.of(s.server_cores for s in samples),
        envoy_cores=Spread.of(s.envoy_cores for s in samples),
        generator_cores=Spread.of(s.result.generator_cores for s in samples),
        lag_p99_ms=Spread.of(s.result.lag_p99_ms for s in samples),
    )


@contextlib.asynccontextmanager
async def _edge(
    group: ProcessGroup, target: str, work: Path, cpus: tuple[int, ...]
) -> AsyncIterator[tuple[EdgeSpec, Child] | None]:
    """The local edge (the configuration ``scripts/up`` renders) in front of ``target``."""
    if edge.envoy_binary() is None:
        yield None
        return
    spec = local_spec({"catalog": target}, listen_port=free_port(), admin_port=free_port())
    child = edge.start(group, spec, work / "edge")
    try:
        if not await edge.wait_ready(spec, child, timeout=60):
            raise RuntimeError(f"the edge did not become ready; see {child.log_path}")
        pin_tree(child.process.pid, cpus)
        yield spec, child
    finally:
        if child.process.poll() is None:
            child.process.terminate()
            child.process.wait(timeout=10)


async def run(plan: Plan, work: Path, layout: Layout, log: Any) -> ReadsResult:
    database_url = f"sqlite+aiosqlite:///{work / 'catalog.db'}"
    product_id = await seed_catalog(database_url)
    group = ProcessGroup(work / "logs")
    result = ReadsResult(layout=layout.describe(), product_id=product_id)
    async with (
        catalog_server("bare", database_url, group, layout.servers) as bare,
        catalog_server("full", database_url, group, layout.servers) as full,
        _edge(group, full.target, work, layout.generators) as front,
        Generators(plan.generator_workers, layout.generators, work / "logs") as generators,
    ):
        result.generator = (
            f"benchmarks.worker: {plan.generator_workers} asyncio process(es), grpc.aio "
            "client for gRPC, an HTTP/1.1 keep-alive client for REST"
        )
        targets: dict[str, dict[str, Any]] = {
            "bare": {"kind": "grpc", "address": bare.target, "product_id": product_id},
            "full": {"kind": "grpc", "address": full.target, "product_id": product_id},
        }
        server_pid = {"bare": bare.pid, "full": full.pid}
        envoy_pid = 0
        if front is not None:
            spec, child = front
            envoy_pid = child.process.pid
            address = f"127.0.0.1:{spec.listen_port}"
            targets["edge-rest"] = {
                "kind": "rest",
                "address": address,
                "path": f"/v1/products/{product_id}",
            }
            targets["edge-grpc"] = {"kind": "grpc", "address": address, "product_id": product_id}
            server_pid["edge-rest"] = server_pid["edge-grpc"] = full.pid
        else:
            result.envoy_available = False
        ways = [w for w in WAYS if w in targets]

        async def measure(way: str, load: Load) -> _Sample:
            pids = {"server": server_pid[way]}
            if way.startswith("edge"):
                pids["envoy"] = envoy_pid
            meter = CpuMeter(pids)
            meter.start()
            sample = await generators.run(load)
            cores = meter.stop()
            return _Sample(sample, cores["server"], cores.get("envoy", 0.0))

        for way in ways if plan.prewarm > 0 else ():
            # Fresh servers get faster for a while (caches fill): load them first, unmeasured.
            warm = Load(targets[way], "closed", plan.prewarm, 0.0, concurrency=plan.concurrency)
            await generators.run(warm)
        maxima: dict[str, list[_Sample]] = {w: [] for w in ways}
        for number in range(plan.max_runs):
            for way in ways:
                load = Load(
                    targets[way], "closed", plan.window, plan.warmup, concurrency=plan.concurrency
                )
                maxima[way].append(await measure(way, load))
                log(f"reads: max {way} run {number + 1}: {maxima[way][-1].result.throughput:.0f}/s")
        result.maximum = {w: _point(0.0, maxima[w]) for w in ways}
        full_max = result.maximum["full"].throughput.median
        result.rates = [max(1.0, round(full_max * f)) for f in plan.rate_fractions]
        result.half_rate = max(1.0, round(full_max * plan.half_load))
        if result.half_rate not in result.rates:
            result.rates = sorted({*result.rates, result.half_rate})

        samples: dict[tuple[str, float], list[_Sample]] = {}
        for number in range(plan.runs):
            for rate in result.rates:
                for way in ways:
                    load = Load(
                        targets[way],
                        "open",
                        plan.window,
                        plan.warmup,
                        rate=rate,
                        concurrency=plan.concurrency,
                        grace=plan.read_grace,
                    )
                    samples.setdefault((way, rate), []).append(await measure(way, load))
            log(f"reads: fixed rates run {number + 1} done")
        result.at_rate = {w: [_point(r, samples[(w, r)]) for r in result.rates] for w in ways}
        _derive(result, samples, maxima, ways)
        if front is not None:
            result.external = await external.run_all(
                targets, plan, layout.generators, work / "logs"
            )
    return result


async def profile_platform(
    plan: Plan, work: Path, layout: Layout, product_id: str, log: Any
) -> list[profiling.Profile]:
    """cProfile of the bare and the full server under the same closed-loop load."""
    database_url = f"sqlite+aiosqlite:///{work / 'catalog.db'}"
    group = ProcessGroup(work / "logs")
    found = []
    async with Generators(plan.generator_workers, layout.generators, work / "logs") as generators:
        for mode in ("bare", "full"):
            path = work / f"profile-catalog-{mode}.prof"
            async with catalog_server(mode, database_url, group, layout.servers, path) as server:
                target = {"kind": "grpc", "address": server.target, "product_id": product_id}
                load = Load(
                    target, "closed", plan.profile_seconds, 0.5, concurrency=plan.concurrency
                )
                profiling.start(server.pid)
                await generators.run(load)
                await profiling.finish(server.pid, path)
            summary = profiling.summarize(path, f"catalog, {LABELS[mode]} (closed loop)")
            if summary is not None:
                found.append(summary)
            log(f"reads: profiled the {mode} catalog")
    return found


def _derive(
    result: ReadsResult,
    samples: dict[tuple[str, float], list[_Sample]],
    maxima: dict[str, list[_Sample]],
    ways: list[str],
) -> None:
    """The comparisons, run by run (the runs are interleaved, so run i of one way is
    paired with run i of another), then their median and range."""
    result.platform_ratio = Spread.of(
        f.result.throughput / b.result.throughput
        for f, b in zip(maxima["full"], maxima["bare"], strict=True)
        if b.result.throughput > 0
    )
    half = result.half_rate
    direct = samples[("full", half)]
    for way in ("edge-rest", "edge-grpc"):
        if way not in ways:
            continue
        through = samples[(way, half)]
        pairs = list(zip(through, direct, strict=True))
        result.added_p50_ms[way] = Spread.of(t.result.p50_ms - d.result.p50_ms for t, d in pairs)
        result.added_p99_ms[way] = Spread.of(t.result.p99_ms - d.result.p99_ms for t, d in pairs)
        result.envoy_cores_per_k[way] = Spread.of(
            t.envoy_cores / (t.result.throughput / 1000) for t in through if t.result.throughput
        )
