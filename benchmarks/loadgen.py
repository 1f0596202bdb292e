"""Driving the load-generator processes (:mod:`benchmarks.worker`) and merging results."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
#: Time for every worker to receive a command before the schedule starts.
_LEAD_SECONDS = 0.3


@dataclass(frozen=True, slots=True)
class Load:
    """What to do: ``mode`` "closed" (``concurrency`` in flight) or "open" (``rate``/s)."""

    target: dict[str, Any]
    mode: str
    duration: float
    warmup: float
    concurrency: int = 16
    rate: float = 0.0
    grace: float = 10.0


@dataclass(frozen=True, slots=True)
class Result:
    """One measurement, all workers merged."""

    throughput: float  # successful calls finished inside the window, per second
    p50_ms: float
    p99_ms: float
    issued: int
    errors: int
    error_sample: str
    generator_cores: float  # CPU of all workers together, in cores
    lag_p99_ms: float  # open loop: how late the worst 1% of calls left (generator health)
    offered: float  # open loop: the rate asked for; closed loop: 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.issued if self.issued else 0.0


class Generators:
    """``count`` worker processes pinned to ``cpus``, kept for many measurements."""

    def __init__(self, count: int, cpus: Sequence[int] | None, log_dir: Path) -> None:
        self.count = max(1, count)
        self.cpus = list(cpus) if cpus else None
        self.log_dir = log_dir
        self._procs: list[asyncio.subprocess.Process] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    async def __aenter__(self) -> Generators:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cpus = ",".join(str(c) for c in self.cpus) if self.cpus else ""
        for index in range(self.count):
            with (self.log_dir / f"generator-{index}.log").open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "benchmarks.worker",
                    cpus,
                    cwd=ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    limit=64 * 1024 * 1024,
                )
            self._procs.append(process)
        for process in self._procs:
            await self._answer(process, timeout=60)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for process in self._procs:
            if process.stdin is not None:
                process.stdin.close()
        for process in self._procs:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._procs.clear()

    async def _answer(self, process: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"load generator exited; see {self.log_dir}")
        answer: dict[str, Any] = json.loads(line)
        if "fatal" in answer:
            raise RuntimeError(f"load generator failed: {answer['fatal']}")
        return answer

    async def run(self, load: Load) -> Result:
        """Splits ``load`` over the workers, runs it, merges what they measured."""
        start_at = time.time() + _LEAD_SECONDS
        shares = []
        for index, process in enumerate(self._procs):
            command = {
                "target": load.target,
                "mode": load.mode,
                "concurrency": _share(load.concurrency, self.count, index),
                "rate": load.rate / self.count,
                "warmup": load.warmup,
                "duration": load.duration,
                "grace": load.grace,
                "start_at": start_at,
            }
            assert process.stdin is not None
            process.stdin.write((json.dumps(command) + "\n").encode())
            await process.stdin.drain()
            shares.append(process)
        timeout = _LEAD_SECONDS + load.warmup + load.duration + load.grace + 30
        answers = [await self._answer(p, timeout) for p in shares]
        return merge(answers, load)


def _share(total: int, parts: int, index: int) -> int:
    return max(1, total // parts + (1 if index < total % parts else 0))


def merge(answers: list[dict[str, Any]], load: Load) -> Result:
    latencies = [v for a in answers for v in a["latencies_us"]]
    window = load.duration
    return Result(
        throughput=sum(a["done_in_window"] for a in answers) / window,
        p50_ms=percentile(latencies, 50) / 1000 if latencies else math.nan,
        p99_ms=percentile(latencies, 99) / 1000 if latencies else math.nan,
        issued=sum(a["issued"] for a in answers),
        errors=sum(a["errors"] for a in answers),
        error_sample=next((a["error_sample"] for a in answers if a["error_sample"]), ""),
        generator_cores=sum(a["cpu_s"] for a in answers) / window,
        lag_p99_ms=max(a["lag_p99_us"] for a in answers) / 1000,
        offered=load.rate if load.mode == "open" else 0.0,
    )
