"""The standard middlewares: access log, metrics, authentication."""

from __future__ import annotations

import logging

import grpc
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from services.platform import auth, logs
from services.platform.metrics import Metrics
from services.platform.pipeline import CallInfo, Middleware

_QUIET_SERVICES = frozenset({"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"})


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class AccessLog(Middleware):
    """One JSON line per RPC: method, code, duration and trace id."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._log = logging.getLogger("emporium.access")

    def on_end(self, call: CallInfo, code: grpc.StatusCode, seconds: float) -> None:
        level = logging.DEBUG if call.service_name in _QUIET_SERVICES else logging.INFO
        fields = {
            "method": call.method,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "trace_id": current_trace_id(),
        }
        logs.fast_line(self._log, level, "rpc", fields)


class RecordMetrics(Middleware):
    """Counts RPCs by method and code and observes their latency.

    Each method's and code's instruments are looked up once (a labelled child costs a
    locked dictionary lookup in prometheus_client) and kept: their number is bounded by the
    methods served times the status codes.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._children: dict[tuple[str, grpc.StatusCode], tuple[Counter, Histogram]] = {}

    def on_end(self, call: CallInfo, code: grpc.StatusCode, seconds: float) -> None:
        children = self._children.get((call.method, code))
        if children is None:
            service, method = call.service_name, call.method_name
            children = self._children[(call.method, code)] = (
                self._metrics.rpcs.labels(service, method, code.name),
                self._metrics.latency.labels(service, method),
            )
        count, latency = children
        count.inc()
        latency.observe(seconds)


class Authenticate(Middleware):
    """Verifies the bearer token and exposes the caller to handlers.

    Methods in ``public`` may be called without a token (a valid token still identifies
    the caller); every other method needs a valid one.
    """

    def __init__(self, verifier: auth.TokenVerifier, public: frozenset[str]) -> None:
        self._verifier = verifier
        self._public = public | {f"/{name}/" for name in _QUIET_SERVICES}

    def _is_public(self, method: str) -> bool:
        return method in self._public or method[: method.rfind("/") + 1] in self._public

    async def on_start(self, call: CallInfo) -> None:
        public = self._is_public(call.method)
        try:
            token = auth.bearer_token(call.metadata)
            if token is not None:
                auth.set_caller(await self._verifier.verify(token))
                return
        except Exception:
            if not public:
                raise
            return
        if not public:
            auth.current_caller()  # raises UNAUTHENTICATED
