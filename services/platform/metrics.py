"""Prometheus metrics: one registry per process, served over HTTP on the metrics port."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from services.platform.clock import now_us
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.metrics")

T = TypeVar("T")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The metrics every service exports; services add their own to ``registry``."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.rpcs = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time to handle an RPC, by method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.info = Gauge(
            "emporium_service_info",
            "Always 1; labels say what runs.",
            ["service", "version"],
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP; returns the port actually bound."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])


class PerRegistry(Generic[T]):
    """Instruments made once per registry, on first use, and shared by everything in the
    process that measures into that registry (a registry refuses a second metric of the
    same name)."""

    def __init__(self, create: Callable[[CollectorRegistry], T]) -> None:
        self._create = create
        self._made: weakref.WeakKeyDictionary[CollectorRegistry, T] = weakref.WeakKeyDictionary()

    def get(self, metrics: Metrics | None) -> T | None:
        """The instruments on ``metrics.registry``; ``None`` without metrics."""
        if metrics is None:
            return None
        found = self._made.get(metrics.registry)
        if found is None:
            found = self._made[metrics.registry] = self._create(metrics.registry)
        return found


class OldestAge:
    """A gauge of how long the oldest waiting item has waited, in seconds.

    The owner records the oldest item's start (microseconds since the epoch, or ``None``
    when nothing waits) whenever it samples its store; the age itself is computed at scrape
    time, so it keeps growing between samples while the item still waits.
    """

    def __init__(self, registry: CollectorRegistry, name: str, documentation: str) -> None:
        self._oldest_us: int | None = None
        self._gauge = Gauge(name, documentation, registry=registry)
        self._gauge.set_function(self.seconds)

    def track(self, oldest_us: int | None) -> None:
        self._oldest_us = oldest_us

    def seconds(self) -> float:
        if self._oldest_us is None:
            return 0.0
        return max(0.0, (now_us() - self._oldest_us) / 1_000_000)


class Sampler:
    """Runs ``probe`` (which sets gauges from a store) every ``interval`` seconds.

    ``start`` and ``stop`` fit a service's ``on_start``/``on_stop`` hooks. A failing probe
    leaves the gauges as they were and is tried again at the next interval.
    """

    def __init__(self, probe: Callable[[], Awaitable[None]], interval: float = 2.0) -> None:
        self._probe = probe
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="metrics-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                await self._probe()
            except Exception:
                log.debug("a metrics probe failed", exc_info=True)
            await asyncio.sleep(self._interval)
