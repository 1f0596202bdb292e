"""A slow dependency: a fault proxy adds 3 s of latency in front of a real inventory service.

The client's channel has a 1 s deadline and the platform's guard (bulkhead and circuit
breaker). Calls fail with DEADLINE_EXCEEDED after about a second; after the threshold the
breaker opens and calls fail fast without waiting; once inventory is fast again and the
reset timeout has passed, the half-open probe succeeds and the breaker closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from emporium.inventory.v1 import inventory_service_pb2 as pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from services.inventory import main as inventory_main
from services.platform.clients import open_channel
from services.platform.metrics import Metrics
from services.platform.resilience import guard
from tests.support import servers
from tests.support.resilience import FakeClock

DEADLINE = 1.0
LATENCY = 3.0
THRESHOLD = 2
RESET_TIMEOUT = 1.0


class FaultProxy:
    """A TCP proxy that delays every chunk by ``latency`` seconds, in both directions.

    Order is kept per direction, and lowering ``latency`` releases held chunks at once,
    so the dependency "recovers" the moment a test says so.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._latency = 0.0
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def latency(self) -> float:
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = seconds
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # wake held chunks to recompute their release time

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self._upstream)
            pipes = [
                asyncio.create_task(self._pipe(client_reader, upstream)),
                asyncio.create_task(self._pipe(upstream_reader, client)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass
        finally:
            for writer in (client, upstream):
                if writer is not None:
                    writer.close()
            self._connections.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                received, data = await held.get()
                while (wait := received + self._latency - loop.time()) > 0:
                    changed = self._changed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), wait)
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                held.put_nowait((loop.time(), data))
            held.put_nowait((loop.time(), b""))
            await delivering
        finally:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await delivering


@pytest.fixture
async def inventory_target(tmp: Path) -> AsyncIterator[str]:
    """A real inventory service on SQLite (GetStock needs no token)."""
    settings = servers.settings_for("inventory", f"sqlite+aiosqlite:///{tmp / 'inventory.db'}")
    async with servers.serve(inventory_main.build, settings) as running:
        yield running.target


@pytest.fixture
async def proxy(inventory_target: str) -> AsyncIterator[tuple[FaultProxy, str]]:
    fault = FaultProxy(inventory_target)
    target = await fault.start()
    try:
        yield fault, target
    finally:
        await fault.stop()


async def _timed(stub: pb_grpc.InventoryServiceStub) -> tuple[grpc.StatusCode, float]:
    """The code of one GetStock (NOT_FOUND is a healthy answer) and how long it took."""
    started = time.monotonic()
    try:
        await stub.GetStock(pb.GetStockRequest(sku="never-stocked"))
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
    return code, time.monotonic() - started


async def test_a_slow_inventory_trips_the_breaker_which_recovers_when_inventory_does(
    proxy: tuple[FaultProxy, str],
) -> None:
    fault, target = proxy
    settings = servers.settings_for(
        "order",
        "sqlite+aiosqlite://",
        BREAKER_FAILURE_THRESHOLD=str(THRESHOLD),
        BREAKER_RESET_TIMEOUT_SECONDS=str(int(RESET_TIMEOUT)),
    )
    metrics = Metrics("order")
    clock = FakeClock(time.monotonic())  # the breaker's reset timeout passes when we say
    channel = open_channel(
        target,
        default_timeout=DEADLINE,
        middlewares=guard("inventory", settings, metrics, clock=clock),
    )
    stub = pb_grpc.InventoryServiceStub(channel)

    def state() -> float | None:
        value: float | None = metrics.registry.get_sample_value(
            "emporium_circuit_breaker_state", {"downstream": "inventory"}
        )
        return value

    try:
        code, _ = await _timed(stub)  # connected and healthy
        assert code == grpc.StatusCode.NOT_FOUND

        fault.latency = LATENCY
        for _ in range(THRESHOLD):
            code, took = await _timed(stub)
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert DEADLINE * 0.9 <= took < 2.0
        assert state() == 1  # open

        for _ in range(3):
            code, took = await _timed(stub)
            assert code == grpc.StatusCode.UNAVAILABLE
            assert took < DEADLINE / 2  # failed fast, never waited for the deadline

        fault.latency = 0.0  # inventory recovers
        code, _ = await _timed(stub)
        assert code == grpc.StatusCode.UNAVAILABLE  # still open until the reset timeout
        clock.advance(RESET_TIMEOUT)
        code, took = await _timed(stub)  # the half-open probe
        assert code == grpc.StatusCode.NOT_FOUND
        assert state() == 0  # closed again
        code, _ = await _timed(stub)
        assert code == grpc.StatusCode.NOT_FOUND

        transitions = {
            (sample.labels["from_state"], sample.labels["to_state"]): sample.value
            for family in metrics.registry.collect()
            if family.name == "emporium_circuit_breaker_transitions"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        assert transitions == {
            ("closed", "open"): 1,
            ("open", "half_open"): 1,
            ("half_open", "closed"): 1,
        }
    finally:
        await channel.close()
