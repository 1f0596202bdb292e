"""The external load generators: h2load (Debian ``nghttp2-client``) for gRPC and wrk
(Debian ``wrk``) for REST, C programs that cost far less CPU per request than any Python
client. When they are missing and the bench runs as root it installs them with apt;
otherwise it names the packages and the figures that need them are left out.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb

GET_PRODUCT = "/emporium.catalog.v1.CatalogService/GetProduct"
PACKAGES = {"h2load": "nghttp2-client", "wrk": "wrk"}


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One run of a tool: requests per second and what it reports about latency."""

    throughput: float
    p50_ms: float  # NaN when the tool does not report it (h2load)
    p99_ms: float
    mean_ms: float
    errors: int
    generator_cores: float
    output: str


def ensure_tools(log: object = None) -> dict[str, str]:
    """Each tool's path, or why it is missing; installs the missing ones when root."""
    missing = [name for name in PACKAGES if shutil.which(name) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = sorted({PACKAGES[name] for name in missing})
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *packages],
            env=env,
            check=False,
            capture_output=True,
        )
    found = {}
    for name, package in PACKAGES.items():
        path = shutil.which(name)
        found[name] = path or f"missing (install the Debian package {package})"
    return found


def have(name: str) -> bool:
    return shutil.which(name) is not None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def taskset(cpus: Sequence[int] | None) -> list[str]:
    """``taskset -c CPUS`` as an argv prefix (nothing when not pinning)."""
    if not cpus or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", ",".join(str(c) for c in cpus)]


async def run(argv: list[str], seconds: float) -> tuple[str, float]:
    """Runs a tool to the end; its output and the CPU seconds it used (the kernel's
    accounting of reaped children: /proc is gone once it exits)."""
    before = children_cpu()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return output.decode(errors="replace"), max(0.0, children_cpu() - before)


def grpc_body(product_id: str, path: Path) -> Path:
    """A gRPC length-prefixed GetProductRequest, for ``h2load -d``."""
    message = catalog_pb.GetProductRequest(product_id=product_id).SerializeToString()
    path.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_h2load(text: str) -> tuple[float, float, int]:
    """(req/s, mean ms per request, failed requests) from h2load's summary."""
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
    failed = re.search(r"requests: .*?(\d+) failed", text)
    return (
        float(rate.group(1)) if rate else float("nan"),
        float(mean.group(1)) * _UNITS[mean.group(2)] if mean else float("nan"),
        int(failed.group(1)) if failed else 0,
    )


def parse_wrk(text: str) -> tuple[float, float, float, float, int]:
    """(req/s, p50 ms, p99 ms, mean ms, non-2xx + socket errors) from ``wrk --latency``."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)

    def quantile(q: str) -> float:
        found = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")

    mean = re.search(r"Latency\s+([\d.]+)(us|ms|s)", text)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    for found in re.findall(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        errors += sum(int(n) for n in found)
    return (
        float(rate.group(1)) if rate else float("nan"),
        quantile("50"),
        quantile("99"),
        float(mean.group(1)) * _UNITS[mean.group(2)] if mean else float("nan"),
        errors,
    )


def duration(seconds: float) -> str:
    """h2load's DURATION: an integer with a unit."""
    return f"{max(1, round(seconds * 1000))}ms"


async def h2load_grpc(
    address: str,
    body: Path,
    seconds: float,
    cpus: Sequence[int] | None,
    connections: int = 4,
    streams: int = 16,
    warmup: float = 1.0,
) -> ToolRun:
    """Closed-loop GetProduct over gRPC: ``connections`` x ``streams`` in flight."""
    argv = [
        *taskset(cpus),
        "h2load",
        "-c",
        str(connections),
        "-m",
        str(streams),
        "--warm-up-time",
        duration(warmup),
        "-D",
        duration(seconds),
        "-d",
        str(body),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        f"http://{address}{GET_PRODUCT}",
    ]
    text, spent = await run(argv, seconds + warmup)
    rate, mean, failed = parse_h2load(text)
    nan = float("nan")
    return ToolRun(rate, nan, nan, mean, failed, spent / (seconds + warmup), text)


async def wrk(
    url: str,
    seconds: float,
    cpus: Sequence[int] | None,
    headers: Sequence[str] = (),
    threads: int = 1,
    connections: int = 32,
) -> ToolRun:
    """Closed-loop GET of ``url``: ``connections`` keep-alive connections on ``threads``."""
    argv = [*taskset(cpus), "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s"]
    for header in headers:
        argv += ["-H", header]
    argv += ["--latency", url]
    text, spent = await run(argv, seconds)
    rate, p50, p99, mean, errors = parse_wrk(text)
    return ToolRun(rate, p50, p99, mean, errors, spent / seconds, text)
