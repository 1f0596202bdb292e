"""Serve a real service in-process on a free port and reach it with a real channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from services.platform.config import Settings, load_settings
from services.platform.metrics import Metrics
from services.platform.runner import Build
from services.platform.server import ServiceHost


def settings_for(service: str, database_url: str, **env: str) -> Settings:
    values: Mapping[str, str] = {
        "DATABASE_URL": database_url,
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
        "PASSWORD_HASH_COST": "fast",
        **env,
    }
    return load_settings(service, values)


@dataclass
class Running:
    host: ServiceHost
    channel: aio.Channel
    metrics: Metrics

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.host.port}"


@asynccontextmanager
async def serve(build: Build, settings: Settings) -> AsyncIterator[Running]:
    metrics = Metrics(settings.service)
    definition = await build(settings, metrics)
    host = ServiceHost(definition, "127.0.0.1:0")
    port = await host.start()
    channel = aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Running(host, channel, metrics)
    finally:
        await channel.close()
        await host.stop(grace=0.5)


@asynccontextmanager
async def serve_probe(
    service: str, unary: Callable[..., Any], stream: Callable[..., Any]
) -> AsyncIterator[str]:
    """A bare server of ``service`` answering ``/<service>/Call`` with ``unary`` and
    ``/<service>/Watch`` with ``stream`` (bytes in, bytes out); yields its target."""
    server = aio.server()
    handlers = {
        "Call": grpc.unary_unary_rpc_method_handler(unary),
        "Watch": grpc.unary_stream_rpc_method_handler(stream),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
