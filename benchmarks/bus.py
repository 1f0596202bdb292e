"""P6: the bus, from outbox commit to the consumer's committed effect.

``scripts/bench_bus.py`` does the measuring (two processes wired as the services are,
each on its own SQLite file, through the embedded Redis at ``appendfsync always``); this
runs it ``plan.runs`` times, takes the medians and, when a figure misses its target,
samples its producer and consumer with py-spy while a run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from benchmarks import pyspy, targets
from benchmarks.loadgen import ROOT
from benchmarks.plan import Log, Plan
from benchmarks.stats import UNKNOWN, Spread

SCRIPT = ROOT / "scripts" / "bench_bus.py"


@dataclass
class BusResult:
    throughput: Spread = UNKNOWN
    burst_lag_p99_ms: Spread = UNKNOWN
    rate: float = 0.0
    lag_p50_ms: Spread = UNKNOWN
    lag_p99_ms: Spread = UNKNOWN
    lost: int = 0
    burst: int = 0
    failures: list[str] = field(default_factory=list)
    profiles: list[pyspy.Profile] = field(default_factory=list)


def _argv(plan: Plan) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--json",
        "--burst",
        str(plan.bus_burst),
        "--rate",
        f"{plan.bus_rate:g}",
        "--seconds",
        f"{plan.bus_window:g}",
    ]


async def _sides(pid: int, timeout: float = 60) -> list[int]:
    """The producer's and the consumer's pids, once the script has started both."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with contextlib.suppress(psutil.Error):
            found = [
                c.pid
                for c in psutil.Process(pid).children(recursive=True)
                if "--role" in " ".join(c.cmdline())
            ]
            if len(found) >= 2:
                return found[:2]
        await asyncio.sleep(0.05)
    return []


async def _once(plan: Plan, work: Path, profile: bool) -> tuple[dict[str, Any], list[Path]]:
    process = await asyncio.create_subprocess_exec(
        *_argv(plan), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    spies = []
    if profile:
        for index, pid in enumerate(await _sides(process.pid)):
            out = work / f"pyspy-p6-{index}.txt"
            spies.append(asyncio.create_task(pyspy.record(pid, plan.profile_seconds, out)))
    output, errors = await asyncio.wait_for(process.communicate(), 600)
    paths = [path for spy in spies if (path := await spy) is not None]
    if process.returncode != 0:
        raise RuntimeError(errors.decode(errors="replace").strip()[-400:])
    answer: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    return answer, paths


async def run(plan: Plan, work: Path, log: Log, profile: bool) -> BusResult:
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    result = BusResult(rate=plan.bus_rate, burst=plan.bus_burst)
    runs: list[dict[str, Any]] = []
    for number in range(plan.runs):
        try:
            answer, _ = await _once(plan, work, profile=False)
        except RuntimeError as exc:  # the script says which effects did not arrive
            result.failures.append(str(exc))
            result.lost += 1
            continue
        runs.append(answer)
        log(
            f"P6 run {number + 1}: {answer['events_per_second']:,.0f} events/s; lag p99 at "
            f"{plan.bus_rate:.0f}/s {answer['lag_p99_ms']:.1f} ms"
        )
    result.throughput = Spread.of(r["events_per_second"] for r in runs)
    result.burst_lag_p99_ms = Spread.of(r["burst_lag_p99_ms"] for r in runs)
    result.lag_p50_ms = Spread.of(r["lag_p50_ms"] for r in runs)
    result.lag_p99_ms = Spread.of(r["lag_p99_ms"] for r in runs)
    misses = (
        result.throughput.median < targets.BUS_EVENTS
        or result.lag_p99_ms.median > targets.BUS_LAG_P99_MS
    )
    if profile and plan.profile_seconds > 0 and misses and runs:
        _, paths = await _once(plan, work, profile=True)
        for path, side in zip(paths, ("bus side A", "bus side B"), strict=False):
            summary = pyspy.summarize(path, f"{side} of scripts/bench_bus.py (burst, then steady)")
            if summary is not None:
                result.profiles.append(summary)
        log("P6: profiled both sides")
    return result
