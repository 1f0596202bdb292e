"""OpenTelemetry: a tracer provider per process, and lean gRPC tracing of our own.

Spans are recorded only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``);
the sampler is then OpenTelemetry's standard one from ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` (default: parent-based, always on). Without an endpoint
nothing is recorded, but the trace context still travels: every RPC and event carries the
caller's trace id (W3C ``traceparent``), so logs of one order share one trace id.

The unrecorded path creates no span object beyond a ``NonRecordingSpan`` and parses
``traceparent`` itself: the generic gRPC instrumentation costs ≈ 0.3 ms per RPC even with
an always-off sampler, more than many of our handlers.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

_recording = False
_configured = False
_tracer: trace.Tracer | None = None
_rng = random.Random()


def configure(service: str, version: str, otlp_endpoint: str | None) -> None:
    """Install the process's tracer provider (once) and record and export spans, if asked.

    Without an endpoint the SDK is not even imported (≈ 0.5 MB resident): nothing records,
    and the API's own provider hands out non-recording tracers, which is all the
    unrecorded paths (:func:`server_span`, :func:`unrecorded_trace`) need.
    """
    global _configured, _recording, _tracer
    if _configured:
        return
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": service, "service.version": version})
        provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        trace.set_tracer_provider(provider)
    _recording = otlp_endpoint is not None
    _tracer = trace.get_tracer("emporium.rpc")
    _configured = True


def recording() -> bool:
    """Whether this process records spans (an exporter is configured)."""
    return _recording


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The remote span context of a W3C ``traceparent`` header, or None if malformed."""
    if not value or len(value) != 55 or value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    try:
        trace_id = int(value[3:35], 16)
        span_id = int(value[36:52], 16)
        flags = int(value[53:55], 16)
    except ValueError:
        return None
    if value[:2] == "ff" or not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


def traceparent() -> str | None:
    """The current trace context as a W3C ``traceparent`` value (None outside a trace)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
        f"{int(span_context.trace_flags):02x}"
    )


def unrecorded_span(parent: SpanContext | None) -> NonRecordingSpan:
    """A span that records nothing, in ``parent``'s trace (a new trace id without one)."""
    trace_id = parent.trace_id if parent is not None else _rng.getrandbits(128) or 1
    return NonRecordingSpan(SpanContext(trace_id, _rng.getrandbits(64) or 1, is_remote=False))


class _Current:
    """Makes ``span`` current while the block runs (a class, not a generator: it is entered
    once per RPC and per event applied).

    A streaming handler that gRPC abandons mid-stream (a watcher that hung up) is closed
    later by the event loop's finalizer, in a task of its own, whose context is a copy of
    the call's: the span looks current there, but detaching it would fail (OpenTelemetry
    logs that as an error, with its traceback). Nothing needs restoring, since the call's
    context went with its task: only the task that attached detaches.
    """

    __slots__ = ("_attached", "_span", "_task", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def __enter__(self) -> trace.Span:
        self._attached = trace.set_span_in_context(self._span)
        self._token = otel_context.attach(self._attached)
        self._task = _current_task()
        return self._span

    def __exit__(self, *exc_info: object) -> None:
        if _current_task() is self._task and otel_context.get_current() is self._attached:
            otel_context.detach(self._token)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop: synchronous code keeps one context
        return None


def unrecorded_trace(parent: SpanContext | None) -> AbstractContextManager[trace.Span]:
    """Makes an :func:`unrecorded_span` current while the block runs: the trace id reaches
    logs, outgoing calls and events at the cost of a context switch."""
    return _Current(unrecorded_span(parent))


def server_span(method: str, header: str | None) -> AbstractContextManager[trace.Span]:
    """The span of one incoming RPC, current while the handler runs.

    Unrecorded (the default): an :func:`unrecorded_trace` in the caller's trace.
    """
    parent = parse_traceparent(header)
    if not _recording or _tracer is None:
        return unrecorded_trace(parent)
    return _recorded_server_span(_tracer, method, parent)


@contextmanager
def _recorded_server_span(
    tracer: trace.Tracer, method: str, parent: SpanContext | None
) -> Iterator[trace.Span]:
    ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
    span = tracer.start_span(
        method, context=ctx, kind=SpanKind.SERVER, attributes={"rpc.method": method}
    )
    try:
        with _Current(span):
            yield span
    except Exception as exc:
        span.record_exception(exc)
        raise
    finally:
        span.end()


def end_server_span(span: trace.Span | None, code: grpc.StatusCode) -> None:
    """Records the RPC's final status on a recorded span."""
    if span is not None and span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))


_NO_SPAN: AbstractContextManager[Any] = nullcontext()


def client_span(method: str | bytes) -> AbstractContextManager[Any]:
    """A CLIENT span around an outgoing call of ``method`` while spans are recorded (its
    ``traceparent`` is then the span's); nothing otherwise."""
    if not _recording or _tracer is None:
        return _NO_SPAN
    name = method.decode() if isinstance(method, bytes) else method
    return _tracer.start_as_current_span(name, kind=SpanKind.CLIENT)
