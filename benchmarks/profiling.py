"""Where the time goes: cProfile output summarized by area and by function.

A process is (re)started under :mod:`benchmarks.profiled`, which switches cProfile on
with SIGUSR1 and writes the profile at SIGUSR2, around the load (so start-up is not in
it). cProfile sees the event loop's thread, which is where Python work happens; the time
waiting in ``epoll`` is idle and left out. Own time is grouped by the package it was
spent in, so "gRPC", "SQLAlchemy" or "logging" stand out at a glance; C functions are
put with the library that calls them where that is clear.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_IDLE = ("poll' of 'select.epoll",)

#: (substring of the file path or function name, area) — first match wins.
_AREAS: tuple[tuple[str, str], ...] = (
    ("greenlet", "SQLAlchemy"),  # its async bridge switches greenlets per statement
    ("_queue.SimpleQueue", "aiosqlite"),  # hands every statement to its thread
    ("of '_contextvars.Context'", "asyncio callbacks (C: gRPC's Cython core, futures)"),
    ("of '_socket.socket'", "sockets"),
    ("sqlite3", "SQLite (driver calls)"),
    ("marshal.loads", "imports"),
    ("builtins.exec", "imports"),
    ("builtins.compile", "imports"),
    ("importlib", "imports"),
    ("/services/platform/middlewares", "platform: interceptors (log, metrics, auth)"),
    ("/services/platform/pipeline", "platform: interceptors (log, metrics, auth)"),
    ("/services/platform/telemetry", "tracing (OpenTelemetry)"),
    ("/services/platform/logs", "logging (JSON)"),
    ("/services/platform/auth", "auth (JWT)"),
    ("/services/platform/resilience", "platform: breaker, bulkhead"),
    ("/services/platform/clients", "platform: client channels"),
    ("/services/platform/", "platform: other"),
    ("/services/", "service code (handlers, domain, repository)"),
    ("/opentelemetry/", "tracing (OpenTelemetry)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/aiosqlite/", "aiosqlite"),
    ("/asyncpg/", "asyncpg"),
    ("/grpc/", "gRPC (grpc.aio, Python side)"),
    ("cygrpc", "gRPC (grpc.aio, Python side)"),
    ("/google/protobuf/", "protobuf"),
    ("/emporium/", "protobuf"),
    ("/logging/", "logging (JSON)"),
    ("/json/", "logging (JSON)"),
    ("/jwt/", "auth (JWT)"),
    ("/cryptography/", "auth (JWT)"),
    ("/prometheus_client/", "metrics (Prometheus)"),
    ("/redis/", "Redis client"),
    ("/asyncio/", "asyncio event loop"),
    ("_asyncio", "asyncio event loop"),
    ("/contextvars", "asyncio event loop"),
    ("/uuid", "uuid, time, misc stdlib"),
)


def argv(out: Path | None, module_args: list[str]) -> list[str]:
    """``[python, -m, ...]`` for ``python -m MODULE ARGS``, under the profiler with ``out``."""
    wrapper = ["benchmarks.profiled", str(out)] if out is not None else []
    return [sys.executable, "-m", *wrapper, *module_args]


def start(pid: int) -> None:
    os.kill(pid, signal.SIGUSR1)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


async def finish(pid: int, out: Path, timeout: float = 20.0) -> None:
    """Asks the profiled process to write its profile and waits until it has."""
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    size = -1
    while time.monotonic() < deadline:
        now = _size(out)
        if now > 0 and now == size:
            return
        size = now
        await asyncio.sleep(0.2)


@dataclass
class Profile:
    name: str
    busy_seconds: float  # own time outside the idle wait
    areas: list[tuple[str, float]] = field(default_factory=list)  # (area, share 0-1)
    functions: list[tuple[str, float, int]] = field(default_factory=list)  # (fn, own, calls)


def _area(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for needle, area in _AREAS:
        if needle in where:
            return area
    if filename == "~":
        return "builtins (C functions)"
    return "other"


def _label(filename: str, line: int, function: str) -> str:
    if filename == "~":
        return function
    parts = Path(filename).parts
    for anchor in ("services", "site-packages", "benchmarks"):
        if anchor in parts:
            short = "/".join(parts[parts.index(anchor) + (anchor == "site-packages") :])
            return f"{short}:{line} {function}"
    return f"{Path(filename).name}:{line} {function}"


def summarize(path: Path, name: str, top: int = 12) -> Profile | None:
    """The profile at ``path`` (None when the process wrote none)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    stats = pstats.Stats(str(path))
    entries = stats.stats  # type: ignore[attr-defined]
    busy = 0.0
    areas: dict[str, float] = {}
    rows: list[tuple[str, float, int]] = []
    for (filename, line, function), (_cc, calls, own, _cumulative, _callers) in entries.items():
        if any(idle in function for idle in _IDLE):
            continue
        busy += own
        area = _area(filename, function)
        areas[area] = areas.get(area, 0.0) + own
        rows.append((_label(filename, line, function), own, calls))
    if busy <= 0:
        return None
    ranked = sorted(areas.items(), key=lambda item: -item[1])
    rows.sort(key=lambda row: -row[1])
    return Profile(
        name=name,
        busy_seconds=busy,
        areas=[(area, seconds / busy) for area, seconds in ranked],
        functions=rows[:top],
    )
