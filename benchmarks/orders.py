"""P5: orders, PlaceOrder to CONFIRMED, over REST through the edge.

32 shoppers (closed loop, spread over several generator processes) each place an order
(``POST /v1/orders``) and read its watch stream (``GET /v1/orders/{id}:watch``) until it
is CONFIRMED, then start the next one. Latency runs from sending the POST to the CONFIRMED
line. Then an open-loop run at half the confirmed rate gives the half-load p99.

CPU per order per process (every service, Redis, Envoy, PostgreSQL's backends) comes from
/proc deltas over each run divided by the orders confirmed in it; when a figure misses its
target the two busiest services are sampled with py-spy under the same load.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import pyspy
from benchmarks import targets as t
from benchmarks.loadgen import Generators, Load, Result
from benchmarks.mesh import Mesh
from benchmarks.plan import Log, Plan
from benchmarks.procs import CpuMeter, RssPeak, cpu_seconds
from benchmarks.stats import UNKNOWN, Spread


@dataclass
class Step:
    offered: float  # open loop: orders/s asked for; closed loop: 0
    shoppers: int
    throughput: Spread
    p50_ms: Spread
    p99_ms: Spread
    issued: int
    errors: int
    error_sample: str
    generator_cores: Spread
    cpu_ms_per_order: dict[str, float]  # median over runs, per process

    @property
    def cpu_ms_total(self) -> float:
        return sum(self.cpu_ms_per_order.values())


@dataclass
class OrdersResult:
    backend: str
    available: bool = True
    reason: str = ""
    closed: Step | None = None
    half: Step | None = None
    rss_under_load: dict[str, float] = field(default_factory=dict)
    profiles: list[pyspy.Profile] = field(default_factory=list)
    #: RPCs served per PlaceOrder with 32 shoppers, by ``Service/Method`` (health left out).
    rpcs_per_order: dict[str, float] = field(default_factory=dict)

    @property
    def capacity(self) -> Spread:
        return self.closed.throughput if self.closed is not None else UNKNOWN


_PLACE = "OrderService/PlaceOrder"


def rpc_counts(mesh: Mesh) -> dict[str, float]:
    """Every service's ``grpc_server_handled_total`` by ``Service/Method``, summed over
    status codes, from its metrics endpoint."""
    counts: dict[str, float] = {}
    for name in mesh.children:
        url = f"http://127.0.0.1:{mesh.env[name]['METRICS_PORT']}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name != "grpc_server_handled_total":
                    continue
                service = sample.labels["grpc_service"].rsplit(".", 1)[-1]
                method = f"{service}/{sample.labels['grpc_method']}"
                if not sample.labels["grpc_service"].startswith("grpc.health"):
                    counts[method] = counts.get(method, 0.0) + sample.value
    return counts


def per_order(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The RPCs served between two :func:`rpc_counts`, per PlaceOrder served."""
    placed = after.get(_PLACE, 0.0) - before.get(_PLACE, 0.0)
    if placed <= 0:
        return {}
    delta = {m: (n - before.get(m, 0.0)) / placed for m, n in after.items()}
    return {m: n for m, n in sorted(delta.items()) if n >= 0.01}


def _postgres_pids() -> dict[str, int]:
    pids = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            pids[f"postgres-{process.pid}"] = process.pid
    return pids


def _started_during(watched: dict[str, int], elapsed: float) -> dict[str, float]:
    """The PostgreSQL backends that started during a window (a pool growing under the
    load): all the CPU they used is the window's."""
    return {
        name: cpu_seconds(pid) / elapsed
        for name, pid in _postgres_pids().items()
        if name not in watched
    }


@contextlib.asynccontextmanager
async def _sampling(peak: RssPeak, every: float = 0.25) -> AsyncIterator[None]:
    async def sample() -> None:
        while True:
            peak.sample()
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _step(
    plan: Plan, mesh: Mesh, pids: dict[str, int], generators: Generators, load: Load
) -> Step:
    results: list[Result] = []
    per_order: dict[str, list[float]] = {}
    for _ in range(plan.runs):
        watched = dict(pids)
        if mesh.backend == "postgres":
            watched.update(_postgres_pids())
        meter = CpuMeter(watched)
        meter.start()
        result = await generators.run(load)
        cores = meter.stop()
        if mesh.backend == "postgres":
            cores.update(_started_during(watched, meter.elapsed))
        results.append(result)
        orders = max(1.0, result.throughput * meter.elapsed)
        totals: dict[str, float] = {}
        for name, used in cores.items():
            key = "postgres" if name.startswith("postgres-") else name
            if used == used:  # NaN: the process went away
                totals[key] = totals.get(key, 0.0) + used * meter.elapsed
        for key, cpu in totals.items():
            per_order.setdefault(key, []).append(cpu / orders * 1000)
    return Step(
        offered=load.rate if load.mode == "open" else 0.0,
        shoppers=load.concurrency if load.mode == "closed" else 0,
        throughput=Spread.of(r.throughput for r in results),
        p50_ms=Spread.of(r.p50_ms for r in results),
        p99_ms=Spread.of(r.p99_ms for r in results),
        issued=sum(r.issued for r in results),
        errors=sum(r.errors for r in results),
        error_sample=next((r.error_sample for r in results if r.error_sample), ""),
        generator_cores=Spread.of(r.generator_cores for r in results),
        cpu_ms_per_order={k: Spread.of(v).median for k, v in per_order.items()},
    )


def _misses(result: OrdersResult) -> bool:
    floor = t.ORDERS_SQLITE if result.backend == "sqlite" else t.ORDERS_POSTGRES
    closed = result.closed
    if closed is None:
        return False
    return closed.throughput.median < floor or closed.cpu_ms_total > t.ORDERS_CPU_MS


async def run(
    plan: Plan, mesh: Mesh, edge_address: str, envoy_pid: int, work: Path, log: Log, profile: bool
) -> OrdersResult:
    result = OrdersResult(backend=mesh.backend)
    pids = {**mesh.pids, "envoy": envoy_pid}
    target: dict[str, Any] = {
        "kind": "rest-order",
        "address": edge_address,
        "product_id": mesh.product_id,
        "tokens": mesh.tokens,
    }
    peak = RssPeak(mesh.pids)
    closed = Load(target, "closed", plan.order_window, plan.order_warmup, plan.shoppers, grace=30)
    async with (
        Generators(plan.order_workers, None, work / "logs") as generators,
        _sampling(peak),
    ):
        before = await asyncio.to_thread(rpc_counts, mesh)
        result.closed = await _step(plan, mesh, pids, generators, closed)
        result.rpcs_per_order = per_order(before, await asyncio.to_thread(rpc_counts, mesh))
        log(
            f"P5 ({mesh.backend}): {plan.shoppers} shoppers → "
            f"{result.closed.throughput.median:.1f} confirmed/s, "
            f"p99 {result.closed.p99_ms.median:.0f} ms, errors {result.closed.errors}"
        )
        half_rate = max(1.0, round(result.closed.throughput.median * plan.half_load, 1))
        half = Load(
            target, "open", plan.order_window, plan.order_warmup, 4 * plan.shoppers, half_rate, 30
        )
        result.half = await _step(plan, mesh, pids, generators, half)
        log(
            f"P5 ({mesh.backend}): half load {half_rate:.1f}/s, "
            f"p99 {result.half.p99_ms.median:.0f} ms"
        )
        result.rss_under_load = dict(peak.peak)
        if profile and plan.profile_seconds > 0 and _misses(result):
            result.profiles = await _profile(plan, mesh, generators, closed, work, result.closed)
            log(f"P5 ({mesh.backend}): profiled the busiest services")
    return result


async def _profile(
    plan: Plan, mesh: Mesh, generators: Generators, load: Load, work: Path, busiest: Step
) -> list[pyspy.Profile]:
    """py-spy of the two services that spend the most CPU per order, under the same load."""
    ranked = sorted(
        (name for name in busiest.cpu_ms_per_order if name in mesh.children),
        key=lambda name: -busiest.cpu_ms_per_order[name],
    )[:2]
    spies = [
        pyspy.record(
            mesh.children[name].process.pid,
            plan.profile_seconds,
            work / f"pyspy-p5-{mesh.backend}-{name}.txt",
        )
        for name in ranked
    ]
    sampled = Load(load.target, "closed", plan.profile_seconds + 1, 0.5, load.concurrency, grace=30)
    *raws, _ = await asyncio.gather(*spies, generators.run(sampled))
    found = []
    for name, raw in zip(ranked, raws, strict=True):
        assert not isinstance(raw, Result)
        summary = pyspy.summarize(raw, f"{name} ({mesh.backend}, {load.concurrency} shoppers)")
        if summary is not None:
            found.append(summary)
    return found
