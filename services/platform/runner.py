"""Runs one service process: logs, tracing, metrics, then the gRPC server until a signal."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from grpc import aio

from services.platform import auth, logs, telemetry
from services.platform.config import Settings, load_settings
from services.platform.keys import identity_verifier
from services.platform.metrics import Metrics
from services.platform.middlewares import AccessLog, Authenticate, RecordMetrics
from services.platform.pipeline import Middleware
from services.platform.server import Hook, ServiceDefinition, ServiceHost

Build = Callable[[Settings, Metrics], Awaitable[ServiceDefinition]]
S = TypeVar("S")


def standard_middlewares(
    settings: Settings,
    metrics: Metrics,
    verifier: auth.TokenVerifier,
    public_methods: Sequence[str],
) -> list[Middleware]:
    """The ordered chain every service uses: log and measure, then authenticate."""
    return [
        AccessLog(settings.service),
        RecordMetrics(metrics),
        Authenticate(verifier, frozenset(public_methods)),
    ]


def definition(
    settings: Settings,
    metrics: Metrics,
    servicer: S,
    add_servicer: Callable[[S, aio.Server], None],
    service_name: str,
    *,
    public_methods: Sequence[str] = (),
    verifier: auth.TokenVerifier | None = None,
    readiness: Sequence[Hook] = (),
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
) -> ServiceDefinition:
    """What every ``main.build`` returns: one servicer (added by its generated
    ``add_…Servicer_to_server``) behind the standard middlewares, verifying tokens with
    identity's keys unless ``verifier`` is given (identity verifies with its own)."""

    def register(server: aio.Server) -> None:
        add_servicer(servicer, server)

    return ServiceDefinition(
        name=settings.service,
        register=register,
        service_names=[service_name],
        middlewares=standard_middlewares(
            settings, metrics, verifier or identity_verifier(settings), public_methods
        ),
        readiness=readiness,
        on_start=on_start,
        on_stop=on_stop,
    )


def settle_heap() -> None:
    """Moves what start-up made (modules, tables, compiled statements, the servicer) out of
    the garbage collector's generations: it lives as long as the process, and a full
    collection under load would walk all of it again, pausing every call in flight
    (tens of milliseconds for a service's ~80,000 start-up objects)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, build: Build) -> None:
    metrics = Metrics(settings.service)
    metrics.info.labels(settings.service, settings.version).set(1)
    metrics.serve(settings.metrics_port, settings.grpc_host)
    definition = await build(settings, metrics)
    settle_heap()
    host = ServiceHost(definition, settings.grpc_address)
    await host.run_until_signalled()


def run(service: str, build: Build) -> None:
    """The body of every service's ``main()``."""
    settings = load_settings(service)
    logs.configure(service, settings.log_level)
    telemetry.configure(service, settings.version, settings.otlp_endpoint)
    if settings.event_loop == "uvloop":
        import uvloop  # the C loop on libuv: less CPU per call (docs/adr/0005-event-loop.md)

        uvloop.run(serve(settings, build))
    else:
        asyncio.run(serve(settings, build))
