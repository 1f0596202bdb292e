"""Waiting for services to report SERVING over grpc.health.v1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(target: str, timeout: float = 1.0) -> bool:
    async with aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def wait_serving(
    targets: dict[str, str],
    timeout: float = 60.0,
    give_up: Callable[[], bool] | None = None,
) -> list[str]:
    """Waits until every target is SERVING (or ``give_up()`` says a process died);
    returns the names still not serving."""
    pending = dict(targets)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline and not (give_up and give_up()):
        results = await asyncio.gather(*(check(t) for t in pending.values()))
        for name, ok in zip(list(pending), results, strict=True):
            if ok:
                del pending[name]
        if pending:
            await asyncio.sleep(0.1)
    return sorted(pending)
