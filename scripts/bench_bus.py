#!/usr/bin/env python3
"""The bus, measured from outbox commit to the consumer's committed effect.

    .venv/bin/python scripts/bench_bus.py [--burst 20000] [--rate 1000] [--seconds 5] [--json]

Two processes, as two services, each on its own SQLite file, wired exactly as the
services are (``outbox_publishing`` and ``consuming`` from services/platform/publishing.py),
talk through an embedded Redis at ``appendfsync always`` (the configuration that loses no
acknowledged event; docs/messaging.md):

- throughput: a burst of events committed back to back, 100 per transaction; events/s
  from the first event's commit to the last effect's commit;
- lag: events committed at a steady ``--rate`` per second (5 ms ticks, one transaction
  each); each event's effect commit minus its creation in the committing transaction,
  p50 and p99.

Prints one line per figure (``--json``: one JSON object). Every process it starts (Redis,
the two sides) is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from google.protobuf.wrappers_pb2 import StringValue  # noqa: E402

from services.platform import outbox  # noqa: E402
from services.platform.config import load_settings  # noqa: E402
from services.platform.db import Database, Transaction  # noqa: E402
from services.platform.embedded_redis import EmbeddedRedis  # noqa: E402
from services.platform.metrics import Metrics  # noqa: E402
from services.platform.outbox import Envelope  # noqa: E402
from services.platform.publishing import consuming, outbox_publishing  # noqa: E402

CONTEXT = "benchbus"
PER_TRANSACTION = 100
TICK_SECONDS = 0.005
EVENT_TYPE = StringValue.DESCRIPTOR.full_name

_EFFECT = sa.insert(
    sa.Table(
        "effects",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
    )
)


def _now_us() -> int:
    return time.time_ns() // 1000


async def _open(path: Path, redis_url: str, service: str) -> tuple[Database, Any]:
    """A database with the outbox, the inbox and an ``effects`` table (the bus tests'
    schema), and the settings of ``service`` pointing at it and at Redis."""
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url, ROOT / "tests" / "busapp" / "migrations")
    await db.migrate()
    settings = load_settings(service, {"REDIS_URL": redis_url, "DATABASE_URL": url})
    return db, settings


async def _line() -> list[str]:
    return (await asyncio.to_thread(sys.stdin.readline)).split()


def _say(data: object) -> None:
    print(json.dumps(data), flush=True)


# The producer ---------------------------------------------------------------


async def _commit(db: Database, name: str, first: int, count: int) -> None:
    """Commits ``count`` events in one transaction, with one multi-row outbox write."""
    events = [(StringValue(value=f"{name}-{i}"), f"a{i % 64}") for i in range(first, first + count)]
    async with db.write() as tx:
        await outbox.SqlOutbox(tx, CONTEXT).record_many(events)


async def produce(path: Path, redis_url: str) -> None:
    db, settings = await _open(path, redis_url, "catalog")
    start, stop = outbox_publishing(settings, db, Metrics("catalog"))
    for hook in start:
        await hook()
    _say({"ready": True})
    while (words := await _line()) and words[0] != "stop":
        name, count = words[1], int(words[2])
        if words[0] == "burst":
            for first in range(0, count, PER_TRANSACTION):
                await _commit(db, name, first, min(PER_TRANSACTION, count - first))
        else:
            rate = float(words[3])
            per_tick = max(1, round(rate * TICK_SECONDS))
            began = time.perf_counter()
            for first in range(0, count, per_tick):
                delay = began + first / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await _commit(db, name, first, min(per_tick, count - first))
        _say({"committed": count})
    for hook in stop:
        await hook()
    await db.dispose()


# The consumer ---------------------------------------------------------------


class _Effects:
    """Stamps each effect with its commit time, by phase: ``(occurred µs, committed µs)``."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, int]] = []
        self.done: dict[str, list[tuple[int, int]]] = {}
        self.progress = asyncio.Event()

    async def handle(self, tx: Transaction, envelope: Envelope) -> None:
        value = StringValue.FromString(envelope.payload).value
        await tx.execute(_EFFECT, {"event_id": envelope.event_id, "consumer": "c", "value": value})
        self.handled.append((value.rsplit("-", 1)[0], envelope.occurred_at_us))

    def committed(self) -> None:
        now = _now_us()
        for name, occurred in self.handled:
            self.done.setdefault(name, []).append((occurred, now))
        self.handled.clear()
        self.progress.set()

    async def wait_for(self, name: str, count: int, timeout: float) -> list[tuple[int, int]]:
        deadline = time.monotonic() + timeout
        while len(self.done.get(name, [])) < count and time.monotonic() < deadline:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), deadline - time.monotonic())
        return self.done.get(name, [])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def consume(path: Path, redis_url: str) -> None:
    db, settings = await _open(path, redis_url, "fulfillment")
    seen = _Effects()
    start, stop = consuming(
        settings,
        db,
        Metrics("fulfillment"),
        contexts=[CONTEXT],
        handlers={EVENT_TYPE: seen.handle},
        after_commit=seen.committed,
        block_ms=100,
    )
    for hook in start:
        await hook()
    _say({"ready": True})
    while (words := await _line()) and words[0] != "stop":
        name, count = words[1], int(words[2])
        stamps = await seen.wait_for(name, count, timeout=120.0)
        lags = [(c - o) / 1000 for o, c in stamps]
        span = (max(c for _, c in stamps) - min(o for o, _ in stamps)) / 1e6 if stamps else 0
        _say(
            {
                "name": name,
                "effects": len(stamps),
                "seconds": span,
                "lag_p50_ms": _percentile(lags, 0.50),
                "lag_p99_ms": _percentile(lags, 0.99),
            }
        )
    for hook in stop:
        await hook()
    await db.dispose()


# The orchestrator -----------------------------------------------------------


class _Side:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, role: str, path: Path, redis_url: str) -> _Side:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--role",
            role,
            str(path),
            redis_url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        side = cls(process)
        await side.read()
        return side

    async def send(self, *words: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((" ".join(map(str, words)) + "\n").encode())
        await self.process.stdin.drain()

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 180)
        if not line:
            raise RuntimeError("a benchmark process exited early")
        result: dict[str, Any] = json.loads(line)
        return result

    async def close(self) -> None:
        if self.process.returncode is None:
            try:
                await self.send("stop")
                await asyncio.wait_for(self.process.wait(), 20)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()


async def _phase(
    producer: _Side, consumer: _Side, command: str, name: str, count: int, *extra: object
) -> dict[str, Any]:
    await consumer.send("expect", name, count)
    await producer.send(command, name, count, *extra)
    await producer.read()
    result = await consumer.read()
    if result["effects"] < count:
        raise RuntimeError(f"{name}: {result['effects']} of {count} effects arrived")
    return result


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="emporium-bench-bus-") as scratch:
        work = Path(scratch)
        with EmbeddedRedis(work / "redis") as redis:
            consumer = await _Side.start("consume", work / "consumer.db", redis.url)
            producer = await _Side.start("produce", work / "producer.db", redis.url)
            try:
                await _phase(producer, consumer, "steady", "warmup", 500, args.rate)
                burst = await _phase(producer, consumer, "burst", "burst", args.burst)
                steady_count = int(args.rate * args.seconds)
                steady = await _phase(
                    producer, consumer, "steady", "steady", steady_count, args.rate
                )
            finally:
                await producer.close()
                await consumer.close()
    return {
        "appendfsync": "always",
        "burst_events": args.burst,
        "events_per_second": round(args.burst / burst["seconds"], 1),
        "burst_lag_p99_ms": round(burst["lag_p99_ms"], 2),
        "rate": args.rate,
        "lag_p50_ms": round(steady["lag_p50_ms"], 2),
        "lag_p99_ms": round(steady["lag_p99_ms"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=20_000, help="events in the burst")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s of the lag phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the lag phase")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--role", choices=["produce", "consume"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        side = produce if args.role == "produce" else consume
        asyncio.run(side(Path(args.paths[0]), args.paths[1]))
        return 0
    result = asyncio.run(orchestrate(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"bus events/s, commit -> effect (burst of {result['burst_events']}): "
            f"{result['events_per_second']:,.0f}"
        )
        print(
            f"bus lag at {result['rate']:,.0f} events/s: p50 {result['lag_p50_ms']} ms, "
            f"p99 {result['lag_p99_ms']} ms"
        )
        print("(embedded Redis, appendfsync always; SQLite on both sides)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
