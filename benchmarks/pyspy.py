"""Where the time goes: py-spy samples of a process under load, summarized by area.

``py-spy record --native`` attaches to a running process (no restart, no wrapper), samples
every thread's Python and native stack, and writes the stacks in py-spy's "raw" (collapsed)
format. Samples of waiting threads (in epoll, on a condition or a queue) are left out. Each sample
is put with the area of its innermost frame that names one (so a sample inside
``libsqlite3`` counts as SQLite, one in gRPC's Cython core as gRPC), and the innermost
Python functions are ranked by their share.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: (substring of a frame "function (file:line)", area) — first match wins.
_AREAS: tuple[tuple[str, str], ...] = (
    ("greenlet", "SQLAlchemy"),  # its async bridge switches greenlets per statement
    ("(sqlalchemy/", "SQLAlchemy"),
    ("(aiosqlite/", "aiosqlite (thread hand-off)"),
    ("(asyncpg/", "asyncpg"),
    ("asyncpg/", "asyncpg"),
    ("sqlite3", "SQLite"),
    ("libsqlite", "SQLite"),
    ("_pysqlite", "SQLite"),
    ("(services/platform/middlewares", "platform: interceptors (log, metrics, auth)"),
    ("(services/platform/pipeline", "platform: interceptors (log, metrics, auth)"),
    ("(services/platform/telemetry", "tracing (OpenTelemetry)"),
    ("(services/platform/logs", "logging (JSON)"),
    ("(services/platform/auth", "auth (JWT)"),
    ("(services/platform/resilience", "platform: breaker, bulkhead"),
    ("(services/platform/", "platform: other"),
    ("(services/", "service code (handlers, domain, repository)"),
    ("(benchmarks/", "benchmark floor (its own code)"),
    ("(opentelemetry/", "tracing (OpenTelemetry)"),
    ("cygrpc", "gRPC (Python and Cython core)"),
    ("(grpc/", "gRPC (Python and Cython core)"),
    ("libgrpc", "gRPC (Python and Cython core)"),
    ("(google/protobuf/", "protobuf"),
    ("_upb", "protobuf"),
    ("(emporium/", "protobuf"),
    ("(logging/", "logging (JSON)"),
    ("(json/", "logging (JSON)"),
    ("_json", "logging (JSON)"),
    ("(jwt/", "auth (JWT)"),
    ("(cryptography/", "auth (JWT)"),
    ("_rust.abi3", "auth (JWT)"),
    ("(prometheus_client/", "metrics (Prometheus)"),
    ("(redis/", "Redis client"),
    ("(asyncio/", "asyncio event loop"),
    ("_asyncio", "asyncio event loop"),
    ("(selectors.py", "asyncio event loop"),
    ("(concurrent/", "thread pool (run_in_executor)"),
    ("gc_collect", "garbage collector"),
)
#: Areas any gRPC server pays whatever it does per call: the floor of a Python service.
TRANSPORT = frozenset({"gRPC (Python and Cython core)", "protobuf", "asyncio event loop"})


@dataclass
class Profile:
    name: str
    samples: int
    areas: list[tuple[str, float]] = field(default_factory=list)  # (area, share 0-1)
    functions: list[tuple[str, float]] = field(default_factory=list)  # (frame, share)

    def share(self, names: frozenset[str]) -> float:
        return sum(share for area, share in self.areas if area in names)


def available() -> bool:
    return _binary() is not None


def _binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Path | None:
    """Samples ``pid`` for ``seconds`` (native frames too); the raw stacks, or None."""
    binary = _binary()
    if binary is None:
        return None
    argv = [binary, "record", "--pid", str(pid), "--duration", f"{max(1, round(seconds))}"]
    argv += ["--rate", str(rate), "--native", "--format", "raw", "--output", str(out)]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), seconds + 60)
    if process.returncode != 0 or not await asyncio.to_thread(out.exists):
        (out.with_suffix(".err")).write_bytes(err)
        return None
    return out


#: Frames a waiting thread sits in: with ``--native`` py-spy cannot tell these samples are
#: idle, so a sample with one of these among its innermost frames is left out.
_IDLE = (
    "epoll_wait",
    "epoll_pwait",
    "pthread_cond_timedwait",
    "pthread_cond_wait",
    "pthread_cond_clockwait",
    "select_poll_poll_impl",
    "_queue_SimpleQueue_get_impl",
    "PyThread_acquire_lock_timed",
    "sem_timedwait",
    "sem_clockwait",
    "sem_wait",
    "nanosleep",
    "clock_nanosleep",
    "gpr_cv_wait",
    "futex",
    "__poll",
    "ppoll",
)


def _idle(frames: list[str]) -> bool:
    return any(marker in frame for frame in frames[-4:] for marker in _IDLE)


def _area(frame: str) -> str | None:
    for needle, area in _AREAS:
        if needle in frame:
            return area
    return None


def _short(frame: str) -> str:
    for anchor in ("site-packages/", "/services/", "/benchmarks/"):
        if anchor in frame:
            head, _, tail = frame.partition("(")
            return f"{head.strip()} ({tail.split(anchor, 1)[-1].rstrip(')')}"
    return frame


def summarize(path: Path | None, name: str, top: int = 10) -> Profile | None:
    """The profile in py-spy's raw format at ``path`` (None when there is none)."""
    if path is None or not path.exists():
        return None
    areas: dict[str, int] = {}
    functions: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if _idle(frames):
            continue
        total += count
        area = next(
            (a for f in reversed(frames) if (a := _area(f)) is not None),
            "other (interpreter, libc)",
        )
        areas[area] = areas.get(area, 0) + count
        python = next((f for f in reversed(frames) if ".py:" in f), frames[-1])
        functions[_short(python)] = functions.get(_short(python), 0) + count
    if total == 0:
        return None
    ranked = sorted(areas.items(), key=lambda item: -item[1])
    fns = sorted(functions.items(), key=lambda item: -item[1])[:top]
    return Profile(
        name=name,
        samples=total,
        areas=[(area, n / total) for area, n in ranked],
        functions=[(fn, n / total) for fn, n in fns],
    )
