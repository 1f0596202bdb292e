"""What one unary RPC costs Python on this machine, on each side: P5's transport floor.

P1's constant floor (a bare ``grpc.aio`` server answering GetProduct with an answer built
once) runs pinned to the servers' core; a bare ``grpc.aio`` client on uvloop, as the
services run, keeps ``CONCURRENCY`` calls in flight from the generators' core
(``python -m benchmarks.rpc_cost PORT SECONDS CONCURRENCY PRODUCT_ID``). CPU per call on
each side, from /proc, is what any of the services pays per RPC it serves or makes before a
line of its own code runs. P5 multiplies it by the RPCs an order really crosses (counted
from the services' ``grpc_server_handled_total``) to say how many orders per second this
design could reach on this machine if handlers, SQLite and the bus cost nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.catalog import catalog_server, seed_catalog
from benchmarks.procs import CpuMeter, Layout
from benchmarks.tools import taskset
from services.mesh.processes import ProcessGroup

#: Served by the order service but called by the edge: Envoy's side is measured as Envoy's.
EDGE_CALLED = frozenset({"OrderService/PlaceOrder", "OrderService/WatchOrder"})


@dataclass(frozen=True)
class RpcCost:
    server_ms: float
    client_ms: float
    calls_per_s: float


@dataclass(frozen=True)
class TransportFloor:
    """The CPU an order's RPCs alone need, and what that allows on ``cores`` cores."""

    rpcs: float  # RPCs served per order, every service
    from_services: float  # of those, made by a service's client (not by the edge)
    ms_per_order: float  # RPCs on both sides + Envoy + Redis, as measured
    orders_per_s: float


def floor(
    cost: RpcCost, rpcs_per_order: dict[str, float], cpu_ms_per_order: dict[str, float], cores: int
) -> TransportFloor:
    """The floor of an order that crossed ``rpcs_per_order`` while every process spent
    ``cpu_ms_per_order`` (Envoy's and Redis's shares count as they were measured)."""
    served = sum(rpcs_per_order.values())
    from_services = sum(n for method, n in rpcs_per_order.items() if method not in EDGE_CALLED)
    ms = served * cost.server_ms + from_services * cost.client_ms
    ms += cpu_ms_per_order.get("envoy", 0.0) + cpu_ms_per_order.get("redis", 0.0)
    return TransportFloor(served, from_services, ms, cores * 1000 / ms if ms > 0 else 0.0)


async def measure(work: Path, layout: Layout, seconds: float, concurrency: int = 16) -> RpcCost:
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    database_url = f"sqlite+aiosqlite:///{work / 'catalog.db'}"
    product_id = await seed_catalog(database_url)
    group = ProcessGroup(work / "logs")
    try:
        async with catalog_server("constant", database_url, group, layout.servers) as server:
            argv = [
                *taskset(layout.generators),
                sys.executable,
                "-m",
                "benchmarks.rpc_cost",
                str(server.port),
                str(seconds),
                str(concurrency),
                product_id,
            ]
            meter = CpuMeter({"server": server.pid})
            meter.start()
            done = await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, text=True, check=True
            )
            server_cores = meter.stop()["server"]
            elapsed = meter.elapsed
    finally:
        group.stop_all(grace=5.0)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    calls = max(1, int(report["calls"]))
    # The server's meter also spans the client's start and warm-up calls: count those too.
    served = calls + int(report["warmup"])
    return RpcCost(
        server_ms=server_cores * elapsed / served * 1000,
        client_ms=float(report["cpu_s"]) / calls * 1000,
        calls_per_s=calls / float(report["elapsed"]),
    )


async def _call(port: int, seconds: float, concurrency: int, product_id: str) -> dict[str, float]:
    from emporium.catalog.v1 import catalog_service_pb2 as pb
    from grpc import aio

    warmup = 500
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        get = channel.unary_unary(
            "/emporium.catalog.v1.CatalogService/GetProduct",
            request_serializer=pb.GetProductRequest.SerializeToString,
            response_deserializer=pb.GetProductResponse.FromString,
        )
        request = pb.GetProductRequest(product_id=product_id)
        for _ in range(warmup):
            await get(request)
        calls = 0
        begin, cpu = time.perf_counter(), time.process_time()
        end = begin + seconds

        async def keep_calling() -> None:
            nonlocal calls
            while time.perf_counter() < end:
                await get(request)
                calls += 1

        await asyncio.gather(*(keep_calling() for _ in range(concurrency)))
        return {
            "calls": calls,
            "warmup": warmup,
            "cpu_s": time.process_time() - cpu,
            "elapsed": time.perf_counter() - begin,
        }


def main() -> None:
    import uvloop

    port, seconds, concurrency, product_id = sys.argv[1:5]
    found = uvloop.run(_call(int(port), float(seconds), int(concurrency), product_id))
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
