"""OpenTelemetry: a tracer provider per process, OTLP export when configured."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False


def configure(service: str, version: str, otlp_endpoint: str | None) -> None:
    """Install the process's tracer provider (once); export spans over OTLP if asked."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": version})
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


def server_interceptor() -> Any:
    return aio_server_interceptor()  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]
