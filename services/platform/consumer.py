"""Idempotent consumers: a consumer group per consuming context, over Redis Streams.

Delivery is at-least-once and the effect is exactly-once: the handler runs and the
event's id is written to the ``inbox`` in the same transaction, an event already in the
inbox is skipped, and the entry is acknowledged only after the commit. A failing entry
stays pending and is retried with backoff; after ``max_deliveries`` it is moved to the
group's dead-letter stream. Entries left pending by a dead consumer are taken over with
XAUTOCLAIM once idle for ``claim_idle_ms``. See docs/messaging.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from opentelemetry import propagate, trace
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.platform.bus import (
    MAX_BLOCK_MS,
    Backoff,
    Bus,
    Delivery,
    GroupMember,
    MalformedEntry,
    bus_metrics,
    decode,
)
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.outbox import Envelope, inbox

log = logging.getLogger("emporium.consumer")

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]

_METRICS_REFRESH_SECONDS = 1.0
_STALE_MEMBER_IDLE_MS = 3600 * 1000
_REASON_LIMIT = 2000

_Ready = tuple[Delivery, Envelope]


def _trace_id(traceparent: str) -> str:
    """The trace id (32 hex digits) of a W3C ``traceparent``, or ``""``."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class _Duplicate(Exception):
    """The event id is already in the inbox: its effect has been applied."""


class _HandlerFailed(Exception):
    """The handler of the ``index``-th event of a chunk raised ``error``."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


class Consumer:
    """Reads ``streams`` as consumer ``consumer_name`` of ``group`` and applies handlers.

    ``handlers`` are keyed by full proto type name (``Envelope.event_type``) and run
    inside the consumer's transaction; events of other types are acknowledged and
    recorded as processed. ``after_commit`` (e.g. ``relay.notify`` when handlers record
    outbox events) runs after a batch's transactions commit and before its entries are
    acknowledged. The default consumer name is unique per process start, so a restarted
    process's leftovers are reclaimed like any dead consumer's.

    Tuning: ``batch`` entries per read, applied in transactions of ``transaction_batch``;
    failed entries are retried after ``retry_backoff`` seconds, doubling up to
    ``retry_backoff_cap``; ``block_ms`` bounds a blocking read (and so ``stop``).
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        group: str,
        streams: Sequence[str],
        handlers: Mapping[str, Handler],
        consumer_name: str | None = None,
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1000,
        batch: int = 100,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
        after_commit: Callable[[], None] | None = None,
        retry_backoff: float = 0.1,
        retry_backoff_cap: float = 5.0,
        transaction_batch: int = 50,
    ) -> None:
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        if max_deliveries < 1 or batch < 1 or claim_idle_ms < 1:
            raise ValueError("max_deliveries, batch and claim_idle_ms must be positive")
        self.db = db
        self.bus = bus
        self.group = group
        self.streams = tuple(streams)
        self.handlers = dict(handlers)
        self.name = consumer_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.max_deliveries = max_deliveries
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = max(1, min(block_ms, MAX_BLOCK_MS))
        self.batch = batch
        self.transaction_batch = max(1, transaction_batch)
        self._member = GroupMember(bus, group, self.name, self.streams)
        self._metrics = bus_metrics(metrics)
        self._tracer = tracer or trace.get_tracer("emporium.bus")
        self._after_commit = after_commit
        self._retry_backoff = retry_backoff
        self._retry_backoff_cap = retry_backoff_cap
        # (stream, entry id) -> (when to retry, min idle ms for XCLAIM)
        self._retries: dict[tuple[str, str], tuple[float, int]] = {}
        self._reclaim_every = min(max(claim_idle_ms / 2000, 0.05), 10.0)
        self._next_reclaim = 0.0
        self._metrics_at = 0.0
        self._stopping = False
        self._interruptible = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group}")

    async def stop(self) -> None:
        """Finish the batch in hand, then stop; a blocking read is simply abandoned."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._interruptible:
            await asyncio.wait({task}, timeout=10.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # The loop -----------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(initial=0.05, cap=2.0)
        ready = failing = False
        while not self._stopping:
            try:
                if not ready:
                    await self._member.ensure_groups()
                    await self._recover_own_pending()
                    ready = True
                await self._retry_due()
                await self._reclaim_if_due()
                await self._process(await self._read_new())
                await self._refresh_metrics()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis away, a group deleted, the database down: start over from the
                # groups and this consumer's own pending entries once it answers again.
                ready = False
                if not failing:
                    log.warning(
                        "consumer cannot make progress; retrying",
                        extra={"group": self.group, "reason": repr(exc)},
                    )
                failing = True
                self._interruptible = True
                try:
                    await asyncio.sleep(backoff.next())
                finally:
                    self._interruptible = False
                continue
            if failing:
                log.info("consumer running again", extra={"group": self.group})
                failing = False
                backoff.reset()

    async def _read_new(self) -> list[Delivery]:
        if self._stopping:
            return []
        block = min(self.block_ms, int((self._next_reclaim - time.monotonic()) * 1000))
        if self._retries:
            due = min(at for at, _ in self._retries.values()) - time.monotonic()
            block = min(block, int(due * 1000))
        self._interruptible = True
        try:
            return await self._member.read_new(self.batch, block)
        finally:
            self._interruptible = False

    async def _recover_own_pending(self) -> None:
        """Take back what this consumer read but never acknowledged (after an outage)."""
        for stream in self.streams:
            after: str | None = None
            for _ in range(1000):  # bounded: at most 1000 batches per recovery
                ids = await self._member.own_pending(stream, self.batch, after)
                mine = [i for i in ids if (stream, i) not in self._retries]
                if mine:
                    await self._process(await self._member.claim(stream, mine, 0))
                if len(ids) < self.batch:
                    break
                after = ids[-1]

    async def _retry_due(self) -> None:
        now = time.monotonic()
        due: dict[tuple[str, int], list[str]] = defaultdict(list)
        for (stream, entry_id), (at, min_idle) in list(self._retries.items()):
            if at <= now:
                del self._retries[(stream, entry_id)]
                due[(stream, min_idle)].append(entry_id)
        for (stream, min_idle), ids in due.items():
            # A min idle time: if another consumer took the entry meanwhile, leave it be.
            await self._process(await self._member.claim(stream, ids, min_idle))

    async def _reclaim_if_due(self) -> None:
        if time.monotonic() < self._next_reclaim:
            return
        self._next_reclaim = time.monotonic() + self._reclaim_every
        for stream in self.streams:
            claimed = await self._member.autoclaim(stream, self.claim_idle_ms, self.batch)
            if claimed:
                log.info(
                    "reclaimed idle entries",
                    extra={"group": self.group, "stream": stream, "count": len(claimed)},
                )
                await self._process(claimed)
        await self._member.forget_stale_members(_STALE_MEMBER_IDLE_MS)

    # Handling -----------------------------------------------------------------

    async def _process(self, entries: list[Delivery]) -> None:
        done: dict[str, list[str]] = defaultdict(list)
        ready: list[_Ready] = []
        for entry in entries:
            self._retries.pop((entry.stream, entry.entry_id), None)
            if not entry.fields:  # deleted from the stream (trimmed) while pending
                done[entry.stream].append(entry.entry_id)
                continue
            try:
                envelope = decode(entry.fields)
            except MalformedEntry as exc:
                await self._dead_letter(entry, "?", f"malformed entry: {exc}")
                continue
            if entry.deliveries > self.max_deliveries:
                # Delivered that often without an ack: it kills or hangs its consumers.
                reason = f"delivered {entry.deliveries} times without being acknowledged"
                await self._dead_letter(entry, envelope.event_type, reason)
                continue
            ready.append((entry, envelope))
        committed = False
        for start in range(0, len(ready), self.transaction_batch):
            chunk = ready[start : start + self.transaction_batch]
            failed_at: int | None = None
            try:
                outcomes = await self._apply_together(chunk) if len(chunk) > 1 else None
            except _HandlerFailed as failure:
                failed_at, outcomes = failure.index, None
                await self._failed(*chunk[failure.index], failure.error)
            if outcomes is None:
                # One at a time, so a failing handler takes only its own event down (and
                # runs once per delivery: the one that failed above is not run again).
                outcomes = [
                    None if i == failed_at else await self._apply_alone(entry, envelope)
                    for i, (entry, envelope) in enumerate(chunk)
                ]
            for (entry, envelope), outcome in zip(chunk, outcomes, strict=True):
                if outcome is None:
                    continue
                committed = committed or outcome != "duplicate"
                done[entry.stream].append(entry.entry_id)
                self._count(envelope, outcome)
                if outcome == "handled":
                    # The access log covers RPCs; this line puts the event's effect in its
                    # trace too (one order, one trace id, across the bus).
                    log.info(
                        "event handled",
                        extra={
                            "group": self.group,
                            "event_type": envelope.event_type,
                            "event_id": envelope.event_id,
                            "aggregate_id": envelope.aggregate_id,
                            "trace_id": _trace_id(envelope.traceparent),
                        },
                    )
        if committed and self._after_commit is not None:
            self._after_commit()
        await self._member.ack(done)

    async def _apply_together(self, chunk: list[_Ready]) -> list[str | None] | None:
        """Applies a chunk of events in one transaction, or rolls it all back.

        The common case (no failures) then costs one commit for many events instead of
        one each. When a handler raises, :class:`_HandlerFailed` says whose; any other
        failure returns ``None``. Either way the caller goes on event by event.
        """
        outcomes: list[str | None] = []
        try:
            async with self.db.transaction() as session:
                ids = [envelope.event_id for _, envelope in chunk]
                seen = set(
                    (
                        await session.scalars(
                            sa.select(inbox.c.event_id).where(
                                inbox.c.consumer == self.group, inbox.c.event_id.in_(ids)
                            )
                        )
                    ).all()
                )
                fresh: list[tuple[int, Delivery, Envelope]] = []
                for index, (entry, envelope) in enumerate(chunk):
                    if envelope.event_id in seen:
                        outcomes.append("duplicate")
                        continue
                    seen.add(envelope.event_id)
                    fresh.append((index, entry, envelope))
                    outcomes.append(
                        "handled" if envelope.event_type in self.handlers else "unhandled"
                    )
                if fresh:
                    now = time.time_ns() // 1000
                    await session.execute(
                        sa.insert(inbox),
                        [
                            {"event_id": e.event_id, "consumer": self.group, "processed_at_us": now}
                            for _, _, e in fresh
                        ],
                    )
                for index, entry, envelope in fresh:
                    handler = self.handlers.get(envelope.event_type)
                    if handler is None:
                        continue
                    with self._span(entry, envelope):
                        try:
                            await handler(session, envelope)
                        except Exception as exc:
                            raise _HandlerFailed(index, exc) from exc
        except _HandlerFailed:
            raise
        except Exception:
            log.debug("batch failed; applying one by one", exc_info=True)
            return None
        return outcomes

    async def _apply_alone(self, entry: Delivery, envelope: Envelope) -> str | None:
        """Applies one event in its own transaction: its outcome, or ``None`` if it failed."""
        try:
            return await self._apply(entry, envelope)
        except Exception as exc:
            await self._failed(entry, envelope, exc)
            return None

    def _span(self, entry: Delivery, envelope: Envelope) -> Any:
        """A CONSUMER span continuing the trace of the envelope's traceparent."""
        carrier = {"traceparent": envelope.traceparent} if envelope.traceparent else {}
        return self._tracer.start_as_current_span(
            f"{entry.stream} process",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "redis",
                "messaging.operation.type": "process",
                "messaging.destination.name": entry.stream,
                "messaging.consumer.group.name": self.group,
                "messaging.message.id": envelope.event_id,
                "emporium.event_type": envelope.event_type,
            },
        )

    async def _apply(self, entry: Delivery, envelope: Envelope) -> str:
        """Runs the handler and records the inbox row in one transaction; the outcome."""
        handler = self.handlers.get(envelope.event_type)
        with self._span(entry, envelope):
            try:
                async with self.db.transaction() as session:
                    # The inbox row first: a concurrent duplicate (a reclaim race) waits on
                    # it or fails here, before its handler has done anything.
                    try:
                        await session.execute(
                            sa.insert(inbox).values(
                                event_id=envelope.event_id,
                                consumer=self.group,
                                processed_at_us=time.time_ns() // 1000,
                            )
                        )
                    except IntegrityError:
                        raise _Duplicate from None
                    if handler is not None:
                        await handler(session, envelope)
            except _Duplicate:
                return "duplicate"
            return "handled" if handler is not None else "unhandled"

    def _count(self, envelope: Envelope, outcome: str) -> None:
        if self._metrics is None:
            return
        self._metrics.processed.labels(self.group, envelope.event_type, outcome).inc()
        if outcome != "duplicate":
            age = time.time() - envelope.occurred_at_us / 1_000_000
            self._metrics.delivery_seconds.labels(self.group).observe(max(age, 0.0))

    async def _failed(self, entry: Delivery, envelope: Envelope, exc: Exception) -> None:
        if self._metrics is not None:
            self._metrics.failures.labels(self.group, envelope.event_type).inc()
        reason = f"{type(exc).__name__}: {exc}"
        if entry.deliveries >= self.max_deliveries:
            await self._dead_letter(entry, envelope.event_type, reason)
            return
        log.warning(
            "event handler failed; will retry",
            extra={
                "group": self.group,
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "deliveries": entry.deliveries,
                "reason": reason,
            },
        )
        delay = min(self._retry_backoff_cap, self._retry_backoff * 2 ** (entry.deliveries - 1))
        delay = random.uniform(delay / 2, delay)
        self._retries[(entry.stream, entry.entry_id)] = (
            time.monotonic() + delay,
            int(delay * 500),
        )

    async def _dead_letter(self, entry: Delivery, event_type: str, reason: str) -> None:
        """Park the entry, with why, on the group's dead-letter stream (and ack it)."""
        reason = reason[:_REASON_LIMIT]
        await self._member.dead_letter(entry, event_type, reason)
        log.error(
            "event dead-lettered",
            extra={
                "group": self.group,
                "entry_id": entry.entry_id,
                "event_type": event_type,
                "deliveries": entry.deliveries,
                "reason": reason,
            },
        )
        if self._metrics is not None:
            self._metrics.dead_letters.labels(self.group, event_type).inc()
            self._metrics.processed.labels(self.group, event_type, "dead_lettered").inc()

    async def _refresh_metrics(self) -> None:
        if self._metrics is None or time.monotonic() - self._metrics_at < _METRICS_REFRESH_SECONDS:
            return
        self._metrics_at = time.monotonic()
        for stream in self.streams:
            pending, lag = await self._member.backlog(stream)
            self._metrics.pending.labels(self.group, stream).set(pending)
            if lag is not None:
                self._metrics.lag.labels(self.group, stream).set(lag)
        waiting = await self._member.dead_letters_waiting()
        self._metrics.dead_letters_waiting.labels(self.group).set(waiting)
