"""A fixed request rate from h2load, with every request's latency from its ``--log-file``.

``h2load -c N --rps R`` starts the request timers of all N connections at the same
instant, so the requests arrive as bursts of N every 1/R s. Here h2load opens its
connections one every ``period`` ms instead (``-r 1 --rate-period``), and the number of
connections, the rate of each and the period are chosen so that the connections' timers
fall evenly over 1/R: the requests arrive spread at the rate asked for, as from an open
loop. Each connection may keep ``depth`` requests outstanding (HTTP/2 streams, or HTTP/1.1
pipelining), 64 in all, so a slow answer delays the answers behind it — which counts in
their latency — but not their start.

h2load writes one line per request: its start (µs since the epoch), its HTTP status (-1
for a failed stream) and the µs until the end of its answer. The requests that started
inside the measurement window (after ``warmup``) give the throughput and p50/p99; the CPU
of the processes measured is read from /proc over the same window.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import tools
from benchmarks.procs import CpuMeter
from benchmarks.stats import percentile

#: Calls outstanding at most, over all connections (as many as the Python generator's).
IN_FLIGHT = 64
#: How far the achieved schedule may be from the rate asked for.
_RATE_TOLERANCE = 0.015
#: The last connection opens at most this long after the first (all inside the warm-up).
_RAMP_MS = 200
#: Requests each connection makes after the window, so the window is loaded to its end.
_TAIL_S = 0.3


@dataclass(frozen=True, slots=True)
class Request:
    """What every request is: a URL, over HTTP/1.1 or HTTP/2, with a body and headers."""

    url: str
    http1: bool
    body: Path | None = None
    headers: tuple[str, ...] = ()


def grpc_get_product(address: str, body: Path) -> Request:
    """GetProduct over gRPC (HTTP/2), ``body`` from :func:`tools.grpc_body`."""
    return Request(
        f"http://{address}{tools.GET_PRODUCT}",
        http1=False,
        body=body,
        headers=("content-type: application/grpc", "te: trailers"),
    )


def rest_get(address: str, path: str, headers: Sequence[str] = ()) -> Request:
    """``GET path`` over HTTP/1.1 keep-alive connections."""
    return Request(f"http://{address}{path}", http1=True, headers=tuple(headers))


def _evenness(connections: int, per_connection: int, period_ms: int) -> float:
    """The smallest gap between two connections' requests, over the even gap (1.0)."""
    interval = 1000 / per_connection
    phases = sorted((index * period_ms) % interval for index in range(connections))
    gaps = [b - a for a, b in itertools.pairwise(phases)]
    gaps.append(phases[0] + interval - phases[-1])
    return min(gaps) * connections / interval


@dataclass(frozen=True, slots=True)
class Schedule:
    """``connections`` connections of ``per_connection`` requests per second each, opened
    ``period_ms`` apart."""

    connections: int
    per_connection: int
    period_ms: int

    @classmethod
    def near(cls, rate: float) -> Schedule:
        """The most even schedule within 1.5% of ``rate`` (h2load's ``--rps`` and
        ``--rate-period`` take whole numbers), 8 to 32 connections."""
        best: tuple[tuple[bool, float, float], Schedule] | None = None
        for connections in range(max(1, min(8, round(rate))), 33):
            per_connection = max(1, round(rate / connections))
            error = abs(connections * per_connection - rate) / rate
            close = error <= _RATE_TOLERANCE
            for period in range(1, math.ceil(1000 / per_connection) + 1):
                if (connections - 1) * period > _RAMP_MS:
                    break
                even = round(_evenness(connections, per_connection, period), 2)
                key = (close, even if close else -error, -error)
                if best is None or key > best[0]:
                    best = (key, cls(connections, per_connection, period))
        assert best is not None
        return best[1]

    @property
    def rate(self) -> int:
        return self.connections * self.per_connection

    @property
    def depth(self) -> int:
        return max(1, IN_FLIGHT // self.connections)

    def describe(self) -> str:
        return (
            f"{self.connections} connections \u00d7 {self.per_connection}/s, opened "
            f"{self.period_ms} ms apart, up to {self.depth} outstanding on each"
        )


@dataclass(frozen=True, slots=True)
class RateRun:
    """One window at a fixed rate."""

    offered: float
    throughput: float  # answers with a 2xx/3xx status to requests of the window, per second
    p50_ms: float
    p99_ms: float
    issued: int  # requests started inside the window
    errors: int
    generator_cores: float
    cores: dict[str, float] = field(default_factory=dict)  # the processes measured
    output: str = ""  # h2load's summary, for the logs


def read_log(text: str, begin_us: int, end_us: int) -> tuple[list[int], int, int]:
    """From h2load's ``--log-file``, the requests that started in [begin, end): the µs
    each successful one took, how many started, how many failed."""
    latencies, issued, failed = [], 0, 0
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not begin_us <= int(fields[0]) < end_us:
            continue
        issued += 1
        if 200 <= int(fields[1]) < 400:
            latencies.append(int(fields[2]))
        else:
            failed += 1
    return latencies, issued, failed


def data_bytes(output: str) -> int | None:
    """The bytes of response bodies in h2load's summary."""
    found = re.search(r"\((\d+)\) data", output)
    return int(found.group(1)) if found else None


def command(request: Request, schedule: Schedule, seconds: float, log_file: Path) -> list[str]:
    """h2load's argv for ``seconds`` of ``request`` at ``schedule``."""
    each = math.ceil(schedule.per_connection * seconds)
    argv = ["h2load", "--h1"] if request.http1 else ["h2load"]
    argv += ["-c", str(schedule.connections), "-m", str(schedule.depth)]
    argv += ["-r", "1", "--rate-period", f"{schedule.period_ms}ms"]
    argv += ["--rps", str(schedule.per_connection), "-n", str(each * schedule.connections)]
    argv += ["--log-file", str(log_file)]
    if request.body is not None:
        argv += ["-d", str(request.body)]
    for header in request.headers:
        argv += ["-H", header]
    return [*argv, request.url]


async def run(
    request: Request,
    schedule: Schedule,
    seconds: float,
    warmup: float,
    cpus: Sequence[int] | None,
    work: Path,
    pids: Mapping[str, int] | None = None,
) -> RateRun:
    """``warmup`` then ``seconds`` of ``request`` at ``schedule``, h2load pinned to
    ``cpus``; the CPU of ``pids`` (name → pid) over the measurement window."""
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    log_file = work / f"h2load-{time.monotonic_ns()}.tsv"
    total = warmup + seconds + schedule.period_ms * schedule.connections / 1000 + _TAIL_S
    argv = [*tools.taskset(cpus), *command(request, schedule, total, log_file)]
    meter = CpuMeter(dict(pids or {}))
    begin = time.time() + warmup
    load = asyncio.create_task(tools.run(argv, total))
    await asyncio.sleep(max(0.0, begin - time.time()))
    meter.start()
    await asyncio.sleep(seconds)
    cores = meter.stop()
    output, spent = await load
    text = await asyncio.to_thread(log_file.read_text) if log_file.exists() else ""
    latencies, issued, failed = read_log(text, round(begin * 1e6), round((begin + seconds) * 1e6))
    if issued == 0:
        raise RuntimeError(f"h2load made no requests in the window: {output[-600:]}")
    if not request.http1 and data_bytes(output) == 0:
        # gRPC errors come as HTTP 200 with grpc-status in the trailers, which h2load
        # does not read; a GetProduct answer has a body, an error none.
        failed, latencies = issued, []
    return RateRun(
        offered=schedule.rate,
        throughput=len(latencies) / seconds,
        p50_ms=percentile(latencies, 50) / 1000 if latencies else math.nan,
        p99_ms=percentile(latencies, 99) / 1000 if latencies else math.nan,
        issued=issued,
        errors=failed,
        generator_cores=spent / total,
        cores=cores,
        output=output,
    )
