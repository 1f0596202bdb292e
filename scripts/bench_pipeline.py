#!/usr/bin/env python3
"""Micro-benchmark: what each standard middleware adds to one unary RPC on the server.

Usage: .venv/bin/python scripts/bench_pipeline.py [--calls 20000] [--repeat 5]

Runs the server interceptor chain (services/platform/pipeline.py) around a handler that
returns at once, in one event loop, with a servicer context that answers what the chain
asks; no gRPC transport, so the figures are the chain's own cost. The access log writes
to /dev/null through the process's JSON handler, as a service's stdout would. Prints the
median microseconds per call of each chain, the chains interleaved across repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.platform import logs, telemetry
from services.platform.metrics import Metrics
from services.platform.middlewares import AccessLog, Authenticate, RecordMetrics
from services.platform.pipeline import Middleware, Pipeline

METHOD = "/emporium.catalog.v1.CatalogService/GetProduct"
Call = Callable[[Any, Any], Awaitable[Any]]


class _Context:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("user-agent", "h2load"), ("te", "trailers"))

    def time_remaining(self) -> float | None:
        return None

    def code(self) -> None:
        return None


async def _handler(request: Any, context: Any) -> Any:
    return request


def _chain(middlewares: list[Middleware], *, tracing: bool = True) -> Call:
    return Pipeline(middlewares, tracing=tracing)._unary(METHOD, _handler)


async def _timed(call: Call, calls: int) -> float:
    context = _Context()
    start = time.perf_counter()
    for _ in range(calls):
        await call(None, context)
    return (time.perf_counter() - start) / calls * 1e6


async def main(calls: int, repeat: int) -> None:
    logs.configure("catalog")
    telemetry.configure("catalog", "bench", None)
    metrics = Metrics("catalog")
    access, measure = AccessLog("catalog"), RecordMetrics(metrics)
    authenticate = Authenticate(None, frozenset({METHOD}))  # type: ignore[arg-type]
    chains = {
        "no pipeline (the handler alone)": _handler,
        "pipeline, no middleware, no trace scope": _chain([], tracing=False),
        "pipeline + trace scope (unrecorded)": _chain([]),
        "  + access log": _chain([access]),
        "  + metrics": _chain([measure]),
        "  + authentication (public method, no token)": _chain([authenticate]),
        "the standard chain (all three)": _chain([access, measure, authenticate]),
    }
    samples: dict[str, list[float]] = {name: [] for name in chains}
    for _ in range(repeat):  # interleaved, so a slower moment of the machine hits them all
        for name, call in chains.items():
            samples[name].append(await _timed(call, calls))
    print(f"{'chain':48s} {'us/call (median)':>17s} {'range':>14s}", file=sys.stderr)
    for name, values in samples.items():
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"{name:48s} {statistics.median(values):17.2f} {spread:>14s}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the access log's destination
    asyncio.run(main(args.calls, args.repeat))
