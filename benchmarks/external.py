"""Optional extra load generators, used when installed: h2load (Debian ``nghttp2-client``)
for gRPC, wrk for REST. They give a second opinion on maximum throughput from C load
generators that cost far less CPU than a Python client; the report names which generator
produced each number. Absent tools are skipped and the report says so.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb

from benchmarks.plan import Plan
from benchmarks.procs import pin_tree

_GET_PRODUCT = "/emporium.catalog.v1.CatalogService/GetProduct"


@dataclass(frozen=True, slots=True)
class ExternalResult:
    tool: str
    way: str
    throughput: float
    p50_ms: float | None
    p99_ms: float | None
    generator_cores: float


def available() -> dict[str, bool]:
    return {"h2load": shutil.which("h2load") is not None, "wrk": shutil.which("wrk") is not None}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _run(argv: list[str], cpus: tuple[int, ...], seconds: float) -> tuple[str, float]:
    """Runs a tool to the end; its output and the CPU seconds it used (from the kernel's
    accounting of reaped children: /proc is gone once it exits)."""
    before = _children_cpu()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    pin_tree(process.pid, cpus)
    output, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    return output.decode(errors="replace"), max(0.0, _children_cpu() - before)


def grpc_body(product_id: str, path: Path) -> Path:
    """A gRPC length-prefixed GetProductRequest, for ``h2load -d``."""
    message = catalog_pb.GetProductRequest(product_id=product_id).SerializeToString()
    path.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    return path


def parse_h2load(text: str) -> float | None:
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    return float(match.group(1)) if match else None


def parse_wrk(text: str) -> tuple[float | None, float | None, float | None]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)

    def quantile(q: str) -> float | None:
        found = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if not found:
            return None
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return float(found.group(1)) * scale

    return (float(rate.group(1)) if rate else None), quantile("50"), quantile("99")


async def run_all(
    targets: dict[str, dict[str, Any]], plan: Plan, cpus: tuple[int, ...], work: Path
) -> list[ExternalResult]:
    """Closed-loop maxima by the external tools that are installed (once each)."""
    tools = available()
    seconds = plan.window + plan.warmup
    found: list[ExternalResult] = []
    if tools["h2load"]:
        for way in ("full", "edge-grpc"):
            target = targets.get(way)
            if target is None:
                continue
            body = grpc_body(target["product_id"], work / "getproduct.grpc")
            argv = [
                "h2load",
                "-c",
                "4",
                "-m",
                str(max(1, plan.concurrency // 4)),
                "-D",
                f"{seconds:.0f}",
                "-d",
                str(body),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                f"http://{target['address']}{_GET_PRODUCT}",
            ]
            text, spent = await _run(argv, cpus, seconds)
            rate = parse_h2load(text)
            if rate is not None:
                found.append(ExternalResult("h2load", way, rate, None, None, spent / seconds))
    if tools["wrk"] and "edge-rest" in targets:
        target = targets["edge-rest"]
        url = f"http://{target['address']}{target['path']}"
        argv = ["wrk", "-t1", f"-c{plan.concurrency}", f"-d{seconds:.0f}s", "--latency", url]
        text, spent = await _run(argv, cpus, seconds)
        rate, p50, p99 = parse_wrk(text)
        if rate is not None:
            found.append(ExternalResult("wrk", "edge-rest", rate, p50, p99, spent / seconds))
    return found
