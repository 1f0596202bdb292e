"""Section 4: the event bus, from outbox commit to the consumer's committed effect.

A producer process (outbox + the platform's relay, SQLite) and a consumer process (the
platform's consumer with its inbox, its own SQLite) talk through the embedded Redis, as
two services would. Throughput: a burst of events committed as fast as the producer can,
divided by the time from the first commit to the last effect. Lag: events committed at a
steady rate, each event's effect-commit time minus its outbox-commit time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import pyspy, targets
from benchmarks.plan import Log, Plan
from benchmarks.procs import CpuMeter
from benchmarks.stats import UNKNOWN, Spread, percentile
from services.platform.embedded_redis import EmbeddedRedis


@dataclass
class BusRun:
    events: int
    delivered: int
    seconds: float  # first outbox commit to last effect commit
    commit_seconds: float  # first to last outbox commit (the producer's own pace)
    lag_p50_ms: float
    lag_p99_ms: float
    cores: dict[str, float]


@dataclass
class BusResult:
    throughput: Spread = UNKNOWN
    commit_rate: Spread = UNKNOWN  # how fast the producer committed the burst
    burst_lag_p99_ms: Spread = UNKNOWN
    rate: float = 0.0
    achieved_rate: Spread = UNKNOWN
    lag_p50_ms: Spread = UNKNOWN
    lag_p99_ms: Spread = UNKNOWN
    #: The steady phase again at half the measured capacity (when that is below ``rate``).
    half_rate: Spread = UNKNOWN
    half_lag_p50_ms: Spread = UNKNOWN
    half_lag_p99_ms: Spread = UNKNOWN
    lost: int = 0
    cores_burst: dict[str, Spread] = field(default_factory=dict)
    cores_rate: dict[str, Spread] = field(default_factory=dict)
    burst: int = 0
    profiles: list[pyspy.Profile] = field(default_factory=list)


async def _spawn(args: list[str], log_path: Path) -> asyncio.subprocess.Process:
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.buswork",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    await _expect(process, "READY", 60, log_path)
    return process


async def _expect(
    process: asyncio.subprocess.Process, word: str, timeout: float, log_path: Path
) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"bus worker exited before {word}; see {log_path}")
            if line.strip() == word:
                return


def _phase(commits: dict[str, int], effects: dict[str, int], skip: int) -> BusRun:
    """Figures of one phase; lag counted after the first ``skip`` events (warm-up)."""
    ordered = sorted(commits.items(), key=lambda item: item[1])
    lags = [(effects[e] - t) / 1000 for e, t in ordered[skip:] if e in effects]
    reached = [effects[e] for e in commits if e in effects]
    first, last = (min(commits.values()), max(commits.values())) if commits else (0, 0)
    return BusRun(
        events=len(commits),
        delivered=len(reached),
        seconds=(max(reached) - first) / 1e6 if reached else 0.0,
        commit_seconds=(last - first) / 1e6,
        lag_p50_ms=percentile(lags, 50),
        lag_p99_ms=percentile(lags, 99),
        cores={},
    )


class _Pair:
    """A producer and a consumer process on fresh databases and a fresh stream."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.producer: asyncio.subprocess.Process | None = None
        self.consumer: asyncio.subprocess.Process | None = None
        self.effected = 0

    async def start(self, redis_url: str) -> None:
        context = f"bench{self.run_dir.name}"
        for side in ("consume", "produce"):
            database = f"sqlite+aiosqlite:///{self.run_dir / f'{side}.db'}"
            process = await _spawn(
                [side, database, redis_url, context, str(self.run_dir / f"{side}.json")],
                self.run_dir / f"{side}.log",
            )
            if side == "consume":
                self.consumer = process
            else:
                self.producer = process

    @property
    def pids(self) -> dict[str, int]:
        assert self.producer is not None
        assert self.consumer is not None
        return {"producer + relay": self.producer.pid, "consumer": self.consumer.pid}

    async def _ask(self, process: asyncio.subprocess.Process | None, line: str) -> list[str]:
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(f"{line}\n".encode())
        await process.stdin.drain()
        async with asyncio.timeout(300):
            answer = (await process.stdout.readline()).decode().split()
        if not answer:
            raise RuntimeError(f"bus worker exited; see {self.run_dir}")
        return answer

    async def phase(self, command: str, count: int) -> tuple[float, dict[str, float]]:
        """Runs one producer command, waits for its effects; the events per second from
        its first commit to its last effect, and the CPU used meanwhile."""
        meter = CpuMeter(self.pids)
        meter.start()
        published = await self._ask(self.producer, command)
        self.effected += count
        reached = await self._ask(self.consumer, f"until {self.effected}")
        cores = meter.stop()
        seconds = (int(reached[2]) - int(published[1])) / 1e6
        return (count / seconds if seconds > 0 else 0.0), cores

    async def stop(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        for process in (self.producer, self.consumer):
            await self._ask(process, "stop")
            assert process is not None
            await process.wait()
        phases = json.loads((self.run_dir / "produce.json").read_text())
        effects = json.loads((self.run_dir / "consume.json").read_text())
        return phases, effects


async def _one(
    work: Path, redis_url: str, plan: Plan, profile: bool = False
) -> tuple[list[BusRun], list[Path]]:
    """The burst, the steady rate, and the steady phase at half the burst's capacity."""
    run_dir = work / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    pair = _Pair(run_dir)
    await pair.start(redis_url)
    paths = [run_dir / "produce.pyspy", run_dir / "consume.pyspy"] if profile else []
    spies = [
        asyncio.create_task(pyspy.record(pid, plan.profile_seconds, path))
        for pid, path in zip(pair.pids.values(), paths, strict=False)
    ]
    warm = int(plan.bus_rate * plan.warmup)
    steady = int(plan.bus_rate * plan.bus_window) + warm
    capacity, burst_cores = await pair.phase(f"burst burst {plan.bus_burst}", plan.bus_burst)
    _, steady_cores = await pair.phase(f"steady steady {steady} {plan.bus_rate}", steady)
    half = capacity / 2
    half_cores: dict[str, float] = {}
    if 0 < half < plan.bus_rate:
        count = int(half * (plan.bus_window + plan.warmup))
        _, half_cores = await pair.phase(f"steady half {count} {half}", count)
    for spy in spies:
        await spy
    phases, effects = await pair.stop()
    runs = []
    for name, cores, skip in (
        ("burst", burst_cores, 0),
        ("steady", steady_cores, warm),
        ("half", half_cores, int(half * plan.warmup)),
    ):
        if name in phases:
            figures = _phase(phases[name], effects, skip)
            figures.cores = cores
            runs.append(figures)
    return runs, paths


def _cores(runs: list[BusRun]) -> dict[str, Spread]:
    names = runs[0].cores if runs else {}
    return {name: Spread.of(r.cores[name] for r in runs) for name in names}


async def run(plan: Plan, work: Path, log: Log, profile: bool) -> BusResult:
    redis = EmbeddedRedis(work / "redis")
    redis.start()
    result = BusResult(rate=plan.bus_rate, burst=plan.bus_burst)
    try:
        bursts: list[BusRun] = []
        steady: list[BusRun] = []
        halves: list[BusRun] = []
        for number in range(plan.runs):
            runs, _ = await _one(work, redis.url, plan)
            bursts.append(runs[0])
            steady.append(runs[1])
            halves += runs[2:]
            pace = runs[0].delivered / max(runs[0].seconds, 1e-9)
            log(
                f"bus run {number + 1}: {pace:,.0f} events/s; "
                f"lag p99 at {plan.bus_rate:.0f}/s {runs[1].lag_p99_ms:.1f} ms"
            )
        result.throughput = Spread.of(r.delivered / r.seconds for r in bursts if r.seconds > 0)
        result.commit_rate = Spread.of(
            r.events / r.commit_seconds for r in bursts if r.commit_seconds > 0
        )
        result.burst_lag_p99_ms = Spread.of(r.lag_p99_ms for r in bursts)
        result.achieved_rate = Spread.of(r.delivered / r.seconds for r in steady if r.seconds > 0)
        result.lag_p50_ms = Spread.of(r.lag_p50_ms for r in steady)
        result.lag_p99_ms = Spread.of(r.lag_p99_ms for r in steady)
        result.half_rate = Spread.of(r.delivered / r.seconds for r in halves if r.seconds > 0)
        result.half_lag_p50_ms = Spread.of(r.lag_p50_ms for r in halves)
        result.half_lag_p99_ms = Spread.of(r.lag_p99_ms for r in halves)
        result.lost = sum(r.events - r.delivered for r in [*bursts, *steady, *halves])
        result.cores_burst = _cores(bursts)
        result.cores_rate = _cores(steady)
        misses = (
            result.throughput.median < targets.BUS_EVENTS
            or result.lag_p99_ms.median > targets.BUS_LAG_P99_MS
        )
        if profile and plan.profile_seconds > 0 and misses:
            _, paths = await _one(work, redis.url, plan, profile=True)
            for path, name in zip(paths, ("producer + relay", "consumer"), strict=True):
                summary = pyspy.summarize(path, f"bus {name} (burst, then steady rates)")
                if summary is not None:
                    result.profiles.append(summary)
            log("bus: profiled producer and consumer")
    finally:
        redis.stop()
    return result
