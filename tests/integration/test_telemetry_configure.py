"""``telemetry.configure`` in a fresh process: the SDK only when an OTLP endpoint is set.

Each case runs in its own interpreter, since a process installs its tracer provider once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

_PROBE = f"""
import json, os, sys
from opentelemetry import trace
from services.platform import telemetry

telemetry.configure("probe", "1", sys.argv[1] or None)
with telemetry.server_span("/x.v1.X/Y", {_PARENT!r}) as span:
    context = span.get_span_context()
    inner = telemetry.traceparent()
    span_recording = span.is_recording()
with telemetry.server_span("/x.v1.X/Y", None) as fresh:
    fresh_id = fresh.get_span_context().trace_id
print(json.dumps({{
    "sdk_trace_imported": "opentelemetry.sdk.trace" in sys.modules,
    "provider": type(trace.get_tracer_provider()).__name__,
    "recording": telemetry.recording(),
    "span_recording": span_recording,
    "trace_id": f"{{context.trace_id:032x}}",
    "traceparent_inside": inner,
    "fresh_trace_valid": fresh_id != 0,
}}), flush=True)
os._exit(0)  # no exit-time flush of the batch processor towards a missing collector
"""


def _probe(endpoint: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, endpoint],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={**os.environ, "OTEL_EXPORTER_OTLP_TIMEOUT": "1"},
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_without_an_endpoint_nothing_records_and_the_sdk_stays_out() -> None:
    seen = _probe("")
    assert seen["sdk_trace_imported"] is False
    assert seen["recording"] is False
    assert seen["span_recording"] is False
    assert seen["trace_id"] == _PARENT[3:35]  # the caller's trace still travels
    inside = seen["traceparent_inside"]
    assert isinstance(inside, str)
    assert inside.startswith(f"00-{_PARENT[3:35]}-")
    assert seen["fresh_trace_valid"] is True


def test_with_an_endpoint_the_sdk_records_spans() -> None:
    seen = _probe("http://127.0.0.1:9")
    assert seen["provider"] == "TracerProvider"
    assert seen["recording"] is True
    assert seen["span_recording"] is True
    assert seen["trace_id"] == _PARENT[3:35]
