"""A load-generator process: ``python -m benchmarks.worker``.

It reads one JSON command per line on stdin, runs it and answers one JSON line on
stdout, so a measurement costs no interpreter start. It drives the flows no external
generator can: a whole order, PlaceOrder then WatchOrder until CONFIRMED (over gRPC or
REST); the fixed-rate reads of P3 come from h2load (:mod:`benchmarks.fixed_rate`).
Commands say what to call, how (closed loop: ``concurrency`` calls always in flight; open
loop: ``rate`` calls per second started on schedule whatever the answers do), when
(``start_at``, wall clock, so several workers start together) and for how long
(``warmup`` then ``duration``).

Latency is measured from the moment a call is issued to its answer; in the open loop the
lateness of issuing against the schedule is reported separately (``lag_p99_us``), so a
generator that falls behind shows it instead of hiding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from emporium.order.v1 import order_service_pb2 as order_pb
from emporium.order.v1 import order_service_pb2_grpc as order_grpc
from grpc import aio

from benchmarks.http1 import Http1Pool
from benchmarks.stats import percentile

Call = Callable[[], Awaitable[None]]

APPROVE_CARD = "4242424242424242"
_CONFIRMED = (order_pb.ORDER_STATUS_CONFIRMED, order_pb.ORDER_STATUS_SHIPPED)
_ENDED_BADLY = (order_pb.ORDER_STATUS_REJECTED, order_pb.ORDER_STATUS_CANCELLED)


class OrderNotConfirmed(Exception):
    """The order ended REJECTED or CANCELLED, or its stream ended first."""


@dataclass
class Tally:
    """What one command measured (only calls issued inside the window count)."""

    latencies_us: list[int] = field(default_factory=list)
    lags_us: list[int] = field(default_factory=list)
    done_in_window: int = 0
    issued: int = 0
    errors: int = 0
    error_sample: str = ""
    cpu_s: float = 0.0

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.error_sample:
            self.error_sample = repr(exc)[:300]


class Clients:
    """Channels and connection pools, kept across commands."""

    def __init__(self) -> None:
        self._channels: dict[str, aio.Channel] = {}
        self._pools: dict[tuple[str, int], Http1Pool] = {}

    def channel(self, address: str) -> aio.Channel:
        if address not in self._channels:
            self._channels[address] = aio.insecure_channel(address)
        return self._channels[address]

    def pool(self, address: str, size: int) -> Http1Pool:
        host, _, port = address.rpartition(":")
        key = (address, size)
        if key not in self._pools:
            self._pools[key] = Http1Pool(host, int(port), size)
        return self._pools[key]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        for pool in self._pools.values():
            await pool.close()


def _order_request(product_id: str) -> order_pb.PlaceOrderRequest:
    return order_pb.PlaceOrderRequest(
        idempotency_key=uuid.uuid4().hex,
        lines=[order_pb.PlaceOrderLine(product_id=product_id, quantity=1)],
        card=order_pb.PaymentCard(
            number=APPROVE_CARD, expiry_month=12, expiry_year=2099, cvc="123", holder_name="Bench"
        ),
        shipping_address=order_pb.ShippingAddress(
            name="Bench",
            line1="1 Load Street",
            city="Berlin",
            postal_code="10115",
            country_code="DE",
        ),
    )


def make_call(target: dict[str, Any], clients: Clients, connections: int) -> Call:
    """The one request a command repeats, by ``target["kind"]``."""
    kind = target["kind"]
    if kind == "order":
        return _order_call(target, clients)
    if kind == "rest-order":
        return _rest_order_call(target, clients, connections)
    raise ValueError(f"unknown target kind {kind!r}")


def _order_call(target: dict[str, Any], clients: Clients) -> Call:
    orders = order_grpc.OrderServiceStub(clients.channel(target["address"]))
    tokens: list[str] = target["tokens"]
    turn = [0]

    async def place_and_confirm() -> None:
        turn[0] += 1
        metadata = (("authorization", f"Bearer {tokens[turn[0] % len(tokens)]}"),)
        placed = await orders.PlaceOrder(
            _order_request(target["product_id"]), metadata=metadata, timeout=30
        )
        order = placed.order
        if order.status in _CONFIRMED:
            return
        watch = order_pb.WatchOrderRequest(order_id=order.order_id)
        async for change in orders.WatchOrder(watch, metadata=metadata, timeout=60):
            if change.status in _CONFIRMED:
                return
            if change.status in _ENDED_BADLY:
                raise OrderNotConfirmed(change.order.rejection_reason or "ended badly")
        raise OrderNotConfirmed("the watch stream ended before CONFIRMED")

    return place_and_confirm


def _order_json(product_id: str) -> bytes:
    return json.dumps(
        {
            "idempotencyKey": uuid.uuid4().hex,
            "lines": [{"productId": product_id, "quantity": 1}],
            "card": {
                "number": APPROVE_CARD,
                "expiryMonth": 12,
                "expiryYear": 2099,
                "cvc": "123",
                "holderName": "Bench",
            },
            "shippingAddress": {
                "name": "Bench",
                "line1": "1 Load Street",
                "city": "Berlin",
                "postalCode": "10115",
                "countryCode": "DE",
            },
        }
    ).encode()


#: An order not CONFIRMED by then counts as failed (the saga's own budget is shorter).
_ORDER_TIMEOUT = 30.0
_REST_CONFIRMED = ("ORDER_STATUS_CONFIRMED", "ORDER_STATUS_SHIPPED")
_REST_ENDED_BADLY = ("ORDER_STATUS_REJECTED", "ORDER_STATUS_CANCELLED")


def _rest_order_call(target: dict[str, Any], clients: Clients, connections: int) -> Call:
    """A shopper over REST through the edge: POST /v1/orders, then read the order's watch
    stream (GET /v1/orders/{id}:watch, one JSON object per line) until CONFIRMED."""
    pool = clients.pool(target["address"], connections)
    tokens: list[str] = target["tokens"]
    turn = [0]

    async def place_and_confirm() -> None:
        async with asyncio.timeout(_ORDER_TIMEOUT):
            await rest_order()

    async def rest_order() -> None:
        turn[0] += 1
        auth = {"authorization": f"Bearer {tokens[turn[0] % len(tokens)]}"}
        body = _order_json(target["product_id"])
        placed = json.loads(await pool.fetch(pool.request("/v1/orders", auth, "POST", body)))
        order = placed["order"]
        if order["status"] in _REST_CONFIRMED:
            return
        watch = pool.request(f"/v1/orders/{order['orderId']}:watch", auth)
        async for line in pool.stream_lines(watch):
            status = json.loads(line)["order"]["status"]
            if status in _REST_CONFIRMED:
                return
            if status in _REST_ENDED_BADLY:
                raise OrderNotConfirmed(status)
        raise OrderNotConfirmed("the watch stream ended before CONFIRMED")

    return place_and_confirm


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _measure_cpu(tally: Tally, begin: float, end: float) -> None:
    await _sleep_until(begin)
    start = time.process_time()  # every thread of this process (gRPC's included)
    await _sleep_until(end)
    tally.cpu_s = time.process_time() - start


async def closed_loop(call: Call, concurrency: int, begin: float, end: float) -> Tally:
    tally = Tally()

    async def client() -> None:
        while (issued := time.perf_counter()) < end:
            try:
                await call()
            except Exception as exc:
                if issued >= begin:
                    tally.failed(exc)
                continue
            done = time.perf_counter()
            # Throughput: every call that ends inside the window (calls as long as the window
            # would otherwise go uncounted); latency: every call issued inside it.
            if begin <= done <= end:
                tally.done_in_window += 1
            if issued >= begin:
                tally.issued += 1
                tally.latencies_us.append(int((done - issued) * 1e6))

    await asyncio.gather(_measure_cpu(tally, begin, end), *(client() for _ in range(concurrency)))
    tally.issued += tally.errors
    return tally


async def open_loop(
    call: Call, rate: float, start: float, begin: float, end: float, grace: float, cap: int
) -> Tally:
    """Issues calls at ``rate`` per second from ``start`` to ``end``; measures from ``begin``."""
    tally = Tally()
    outstanding: set[asyncio.Task[None]] = set()
    period = 1.0 / rate

    async def one(due: float) -> None:
        issued = time.perf_counter()
        measured = issued >= begin
        if measured:
            tally.issued += 1
            tally.lags_us.append(int((issued - due) * 1e6))
        try:
            await call()
        except Exception as exc:
            if measured:
                tally.failed(exc)
            return
        done = time.perf_counter()
        if begin <= done <= end:
            tally.done_in_window += 1
        if measured:
            tally.latencies_us.append(int((done - issued) * 1e6))

    cpu = asyncio.create_task(_measure_cpu(tally, begin, end))
    index = 0
    while (due := start + index * period) < end:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while due <= now and due < end:  # everything due by now, even if we woke late
            if len(outstanding) >= cap:
                if due >= begin:
                    tally.issued += 1
                    tally.failed(RuntimeError(f"more than {cap} calls outstanding"))
            else:
                task = asyncio.create_task(one(due))
                outstanding.add(task)
                task.add_done_callback(outstanding.discard)
            index += 1
            due = start + index * period
    await cpu
    if outstanding:
        _, late = await asyncio.wait(set(outstanding), timeout=grace)
        for task in late:
            task.cancel()
            tally.failed(TimeoutError(f"no answer {grace:.0f}s after the window"))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*late, return_exceptions=True)
    return tally


async def run_command(command: dict[str, Any], clients: Clients) -> dict[str, Any]:
    concurrency = int(command.get("concurrency", 16))
    call = make_call(command["target"], clients, concurrency)
    # The schedule is in wall-clock time so that several workers start together.
    start = time.perf_counter() + max(0.0, float(command["start_at"]) - time.time())
    begin = start + float(command["warmup"])
    end = begin + float(command["duration"])
    if command["mode"] == "closed":
        await _sleep_until(start)
        tally = await closed_loop(call, concurrency, begin, end)
    else:
        tally = await open_loop(
            call,
            float(command["rate"]),
            start,
            begin,
            end,
            float(command.get("grace", 10.0)),
            int(command.get("cap", 20_000)),
        )
    return {
        "latencies_us": tally.latencies_us,
        "done_in_window": tally.done_in_window,
        "issued": tally.issued,
        "errors": tally.errors,
        "error_sample": tally.error_sample,
        "window": float(command["duration"]),
        "cpu_s": tally.cpu_s,
        "lag_p99_us": percentile(tally.lags_us, 99) if tally.lags_us else 0.0,
    }


async def serve(cpus: list[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    clients = Clients()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    try:
        while line := await reader.readline():
            command = json.loads(line)
            try:
                answer = await run_command(command, clients)
            except (grpc.RpcError, OSError, ValueError) as exc:
                answer = {"fatal": repr(exc)}
            print(json.dumps(answer), flush=True)
    finally:
        await clients.close()


def main() -> None:
    cpus = [int(c) for c in sys.argv[1].split(",")] if len(sys.argv) > 1 and sys.argv[1] else None
    asyncio.run(serve(cpus))


if __name__ == "__main__":
    main()
