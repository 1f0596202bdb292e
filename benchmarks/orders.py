"""Section 3: completed order sagas per second, PlaceOrder to CONFIRMED.

Open-loop load at increasing offered rates; each order is PlaceOrder followed by
WatchOrder until the order is CONFIRMED, and its latency runs from issuing PlaceOrder to
the CONFIRMED message. A step is *sustained* when the mesh completes at least 90% of the
offered rate inside the window with under 1% failures; the ramp stops after the first
step that is not. The knee is the last sustained step. Then the half-load step (half the
best completed rate) gives the latency figure the target speaks of.

CPU per order per process comes from ``/proc`` deltas over each step, which tells which
service the time goes to; the busiest ones are then profiled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from benchmarks import profiling
from benchmarks.loadgen import Generators, Load, Result
from benchmarks.mesh import Mesh, restart
from benchmarks.plan import Log, Plan
from benchmarks.procs import CpuMeter, RssPeak
from benchmarks.stats import UNKNOWN, Spread

SUSTAINED_SHARE = 0.9
MAX_ERROR_RATE = 0.01


@dataclass
class Step:
    offered: float
    throughput: Spread
    p50_ms: Spread
    p99_ms: Spread
    issued: int
    errors: int
    error_sample: str
    generator_cores: Spread
    cpu_ms_per_order: dict[str, float]  # median over runs, per process

    @property
    def sustained(self) -> bool:
        good = self.issued > 0 and self.errors <= MAX_ERROR_RATE * self.issued
        return good and self.throughput.median >= SUSTAINED_SHARE * self.offered


@dataclass
class OrdersResult:
    backend: str
    available: bool = True
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    knee: float | None = None
    capacity: Spread = UNKNOWN
    half: Step | None = None
    rss_under_load: dict[str, float] = field(default_factory=dict)
    cold_start: float = 0.0
    profiles: list[profiling.Profile] = field(default_factory=list)


def _postgres_pids() -> dict[str, int]:
    pids = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres":
            pids[f"postgres-{process.pid}"] = process.pid
    return pids


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
    plan: Plan, mesh: Mesh, generators: Generators, rate: float
) -> tuple[Step, list[Result]]:
    target = {
        "kind": "order",
        "address": mesh.target("order"),
        "product_id": mesh.product_id,
        "tokens": mesh.tokens,
    }
    results: list[Result] = []
    per_order: dict[str, list[float]] = {}
    for _ in range(plan.runs):
        pids = dict(mesh.pids)
        if mesh.backend == "postgres":
            pids.update(_postgres_pids())
        meter = CpuMeter(pids)
        meter.start()
        load = Load(target, "open", plan.order_window, plan.order_warmup, rate=rate, grace=30)
        result = await generators.run(load)
        cores = meter.stop()
        results.append(result)
        orders = rate * (plan.order_window + plan.order_warmup)
        seconds = meter.elapsed
        totals: dict[str, float] = {}
        for name, used in cores.items():
            key = "postgres" if name.startswith("postgres-") else name
            if used == used:  # NaN: the process went away
                totals[key] = totals.get(key, 0.0) + used * seconds
        for key, cpu in totals.items():
            per_order.setdefault(key, []).append(cpu / orders * 1000)
    step = Step(
        offered=rate,
        throughput=Spread.of(r.throughput for r in results),
        p50_ms=Spread.of(r.p50_ms for r in results),
        p99_ms=Spread.of(r.p99_ms for r in results),
        issued=sum(r.issued for r in results),
        errors=sum(r.errors for r in results),
        error_sample=next((r.error_sample for r in results if r.error_sample), ""),
        generator_cores=Spread.of(r.generator_cores for r in results),
        cpu_ms_per_order={k: Spread.of(v).median for k, v in per_order.items()},
    )
    return step, results


async def run(plan: Plan, mesh: Mesh, work: Path, log: Log, profile: bool) -> OrdersResult:
    result = OrdersResult(backend=mesh.backend, cold_start=mesh.cold_start)
    peak = RssPeak(mesh.pids)
    async with Generators(plan.generator_workers, None, work / "logs") as generators:
        async with _sampling(peak):
            for rate in plan.order_rates:
                step, _ = await _step(plan, mesh, generators, rate)
                result.steps.append(step)
                log(
                    f"orders ({mesh.backend}): offered {rate:.0f}/s → "
                    f"{step.throughput.median:.0f}/s, p99 {step.p99_ms.median:.0f} ms, "
                    f"errors {step.errors}/{step.issued}"
                )
                if not step.sustained:
                    break
        result.rss_under_load = dict(peak.peak)
        usable = [s for s in result.steps if s.errors <= 0.05 * max(1, s.issued)]
        sustained = [s for s in result.steps if s.sustained]
        result.knee = sustained[-1].offered if sustained else None
        best = max(usable, key=lambda s: s.throughput.median, default=None)
        if best is not None:
            result.capacity = best.throughput
            half_rate = max(1.0, round(best.throughput.median / 2))
            result.half, _ = await _step(plan, mesh, generators, half_rate)
            log(f"orders ({mesh.backend}): half load {half_rate:.0f}/s done")
        if profile and plan.profile_seconds > 0 and best is not None:
            result.profiles = await _profile(plan, mesh, generators, work, best, log)
    return result


async def _profile(
    plan: Plan, mesh: Mesh, generators: Generators, work: Path, best: Step, log: Log
) -> list[profiling.Profile]:
    """Profiles the two services that spend the most CPU per order, under the best load."""
    ranked = sorted(
        (name for name in best.cpu_ms_per_order if name in mesh.children),
        key=lambda name: -best.cpu_ms_per_order[name],
    )
    target = {
        "kind": "order",
        "address": mesh.target("order"),
        "product_id": mesh.product_id,
        "tokens": mesh.tokens,
    }
    found = []
    for name in ranked[:2]:
        path = work / f"profile-{mesh.backend}-{name}.prof"
        await restart(mesh, name, profile=path)
        rate = max(1.0, round(best.throughput.median * 0.8))
        pid = mesh.children[name].process.pid
        profiling.start(pid)
        await generators.run(Load(target, "open", plan.profile_seconds, 0.5, rate=rate, grace=30))
        await profiling.finish(pid, path)
        await restart(mesh, name)
        summary = profiling.summarize(path, f"{name} ({mesh.backend}, {rate:.0f} orders/s)")
        if summary is not None:
            found.append(summary)
        log(f"orders ({mesh.backend}): profiled {name}")
    return found
