"""The one gRPC server bootstrap: health, reflection (services/platform/reflection.py), the
interceptor chain, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.platform import reflection
from services.platform.pipeline import Middleware, Pipeline
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.server")

Hook = Callable[[], Awaitable[None]]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: Request metadata a service accepts. Envoy forwards a transcoded REST call's URL twice
#: (``:path`` and ``x-envoy-original-path``); the edge refuses more than 8 KiB of request
#: headers (431), so whatever it forwards fits here instead of meeting gRPC's default (8 KiB
#: soft, 16 KiB hard) and turning a 400 into RESOURCE_EXHAUSTED.
MAX_METADATA_BYTES = 64 * 1024


@dataclass
class ServiceDefinition:
    """What a composition root hands to the bootstrap.

    ``register`` adds the servicers to the server; ``service_names`` are their full
    names (for health and reflection); ``readiness`` checks run before SERVING and then
    every ``readiness_interval`` seconds; ``on_start``/``on_stop`` start and stop
    background work (relays, consumers) and release resources.
    """

    name: str
    register: Callable[[aio.Server], None]
    service_names: Sequence[str]
    middlewares: Sequence[Middleware]
    readiness: Sequence[Hook] = ()
    on_start: Sequence[Hook] = ()
    on_stop: Sequence[Hook] = ()
    readiness_interval: float = 5.0
    tracing: bool = True


class ServiceHost:
    """Runs one service's gRPC server until told to stop, then drains it."""

    def __init__(self, definition: ServiceDefinition, address: str) -> None:
        self.definition = definition
        self.address = address
        self.health = health.aio.HealthServicer()
        self.server = aio.server(
            interceptors=[Pipeline(definition.middlewares, tracing=definition.tracing)],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 4 * 1024 * 1024),
                ("grpc.max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        self.port = 0
        self._ready = False
        self._watch: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def start(self) -> int:
        """Bind, serve NOT_SERVING, start the service, then report SERVING."""
        definition = self.definition
        definition.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable(definition.service_names, self.server)
        self.port = self.server.add_insecure_port(self.address)
        if self.port == 0:
            raise RuntimeError(f"cannot bind {self.address}")
        await self._set_all(NOT_SERVING)
        await self.server.start()
        for hook in definition.readiness:
            await hook()
        for hook in definition.on_start:
            await hook()
        await self._set_all(SERVING)
        self._ready = True
        self._watch = asyncio.create_task(self._watch_readiness())
        log.info("serving", extra={"address": self.address, "port": self.port})
        return self.port

    async def _set_all(self, state: int) -> None:
        await self.health.set("", state)
        for name in self.definition.service_names:
            await self.health.set(name, state)

    async def _watch_readiness(self) -> None:
        while True:
            await asyncio.sleep(self.definition.readiness_interval)
            try:
                for hook in self.definition.readiness:
                    await hook()
            except Exception as exc:
                if self._ready:
                    log.warning("not ready", extra={"reason": repr(exc)})
                    self._ready = False
                    await self._set_all(NOT_SERVING)
            else:
                if not self._ready:
                    log.info("ready again")
                    self._ready = True
                    await self._set_all(SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        """NOT_SERVING, drain in-flight calls for ``grace`` seconds, stop, release."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await stop_task(self._watch)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for hook in self.definition.on_stop:
            try:
                await hook()
            except Exception:
                log.exception("error while stopping")
        log.info("stopped")

    async def run_until_signalled(self, grace: float = 5.0) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("shutting down")
        await self.stop(grace)
