"""Applying events exactly once: the handler's writes and the inbox row in one transaction.

An event the consumer has no handler for is ``unhandled``: acknowledged with no
transaction and no inbox row (it has no effect to apply twice). A service reads every
event of the streams it follows and handles a few kinds; the order service, say, one of
fulfillment's two per order, and fulfillment one of the order's three.

A chunk of events is applied in one transaction (one commit for many events). When a
handler raises, the chunk is rolled back and applied event by event, so the failing
event takes only itself down, and later events of its aggregate wait behind it
(outcome ``deferred``). A failure of the infrastructure (see
:mod:`services.platform.bus.failures`) stops the chunk where it happened: nothing from
there on is applied, and the caller retries it later without counting a delivery.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

import sqlalchemy as sa
from opentelemetry import propagate, trace

from services.platform import telemetry
from services.platform.bus.dead_letters import aggregate_key
from services.platform.bus.group import Delivery
from services.platform.clock import now_us
from services.platform.db import Database, IntegrityViolation, Transaction
from services.platform.outbox import Envelope, inbox

log = logging.getLogger("emporium.consumer")

#: A handler runs in the consumer's transaction (``db.write()``), with the inbox row.
Handler = Callable[[Transaction, Envelope], Awaitable[None]]


@functools.cache
def _seen(size: int) -> sa.Select[tuple[str]]:
    """Which of ``size`` event ids the inbox holds: an ``IN`` of ``size`` parameters.

    Compiled once per size (the statement cache keys on the object) where an expanding
    ``IN`` would be expanded into new SQL on every call, which cost more than the query.
    """
    ids: list[sa.BindParameter[str]] = [sa.bindparam(f"id{i}") for i in range(size)]
    return sa.select(inbox.c.event_id).where(
        inbox.c.consumer == sa.bindparam("consumer"), inbox.c.event_id.in_(ids)
    )


_RECORD = sa.insert(inbox)
Ready = tuple[Delivery, Envelope]
#: ``handled``, ``duplicate``, ``unhandled``, ``deferred`` or the handler's own error.
Outcome = str | Exception


def key_of(entry: Delivery, envelope: Envelope) -> str:
    return aggregate_key(entry.stream, envelope.aggregate_id)


class _Duplicate(Exception):
    """The event id is already in the inbox: its effect has been applied."""


class _HandlerFailed(Exception):
    """The handler of the ``index``-th event of a chunk raised ``error``."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


class Applier:
    """Runs ``handlers`` for consumer group ``group`` against ``db``'s inbox.

    ``tracer``: where the handlers' spans go; without one, the process's (recorded only
    when an exporter is configured, see :mod:`services.platform.telemetry`).
    """

    def __init__(
        self,
        db: Database,
        group: str,
        handlers: Mapping[str, Handler],
        tracer: trace.Tracer | None,
        transient: Callable[[BaseException], bool],
    ) -> None:
        self.db = db
        self.group = group
        self.handlers: dict[str, Handler] = dict(handlers)
        self._tracer = tracer
        self._transient = transient
        self._unit = _Transactions(db)

    async def apply(self, chunk: Sequence[Ready]) -> tuple[list[Outcome], BaseException | None]:
        """The outcomes of a prefix of ``chunk``, and the infrastructure failure that
        stopped it (``None`` when every event has an outcome)."""
        failed: _HandlerFailed | None = None
        if len(chunk) > 1:
            try:
                together = await self._together(chunk)
            except _HandlerFailed as failure:
                failed, together = failure, None
            except Exception as exc:
                if self._transient(exc):
                    return [], exc
                log.debug("batch failed; applying one by one", exc_info=True)
                together = None
            if together is not None:
                return together, None
        outcomes: list[Outcome] = []
        failing: set[str] = set()
        for index, (entry, envelope) in enumerate(chunk):
            if key_of(entry, envelope) in failing:
                outcomes.append("deferred")  # an earlier event of its aggregate failed
                continue
            try:
                # The event whose handler just failed in the chunk's transaction is not
                # run again: that was this delivery's attempt.
                outcome: Outcome = (
                    failed.error
                    if failed is not None and failed.index == index
                    else await self._alone(entry, envelope)
                )
            except Exception as exc:
                if self._transient(exc):
                    return outcomes, exc
                outcome = exc
            if isinstance(outcome, Exception):
                failing.add(key_of(entry, envelope))
            outcomes.append(outcome)
        return outcomes, None

    async def _together(self, chunk: Sequence[Ready]) -> list[Outcome]:
        """Applies a chunk in one transaction, or rolls it all back."""
        handlers = self.handlers
        outcomes: list[Outcome] = ["unhandled"] * len(chunk)
        handled = [i for i, (_, envelope) in enumerate(chunk) if envelope.event_type in handlers]
        if not handled:
            return outcomes
        async with self._unit.begin() as work:
            ids = [chunk[i][1].event_id for i in handled]
            seen = await self._unit.seen(work, self.group, ids)
            fresh: list[tuple[int, Delivery, Envelope]] = []
            for index in handled:
                entry, envelope = chunk[index]
                if envelope.event_id in seen:
                    outcomes[index] = "duplicate"
                    continue
                seen.add(envelope.event_id)
                fresh.append((index, entry, envelope))
                outcomes[index] = "handled"
            if fresh:
                now = now_us()
                rows = [_inbox_row(e, self.group, now) for _, _, e in fresh]
                await self._unit.record(work, rows)
            for index, entry, envelope in fresh:
                handler = handlers[envelope.event_type]
                with self.span(entry, envelope):
                    try:
                        await handler(work, envelope)
                    except Exception as exc:
                        if self._transient(exc):
                            raise
                        raise _HandlerFailed(index, exc) from exc
        return outcomes

    async def _alone(self, entry: Delivery, envelope: Envelope) -> Outcome:
        """Applies one event in its own transaction; its outcome (raises on failure)."""
        handler = self.handlers.get(envelope.event_type)
        if handler is None:
            return "unhandled"
        with self.span(entry, envelope):
            try:
                async with self._unit.begin() as work:
                    # The inbox row first: a concurrent duplicate (a reclaim race) waits on
                    # it or fails here, before its handler has done anything.
                    try:
                        await self._unit.record(work, [_inbox_row(envelope, self.group, now_us())])
                    except IntegrityViolation:
                        raise _Duplicate from None
                    await handler(work, envelope)
            except _Duplicate:
                return "duplicate"
            return "handled"

    def span(self, entry: Delivery, envelope: Envelope) -> AbstractContextManager[Any]:
        """A CONSUMER span continuing the trace of the envelope's traceparent.

        When nothing records, only that trace is made current (under an unrecorded span,
        as :func:`telemetry.server_span` does for an RPC): the handler's calls and events
        carry its trace id, at a fraction of what a span through the tracer costs.
        """
        if self._tracer is None and not telemetry.recording():
            return telemetry.unrecorded_trace(telemetry.parse_traceparent(envelope.traceparent))
        carrier = {"traceparent": envelope.traceparent} if envelope.traceparent else {}
        tracer = self._tracer or trace.get_tracer("emporium.bus")
        return tracer.start_as_current_span(
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


def _inbox_row(envelope: Envelope, group: str, now: int) -> dict[str, Any]:
    return {"event_id": envelope.event_id, "consumer": group, "processed_at_us": now}


class _Transactions:
    """``db.write()``: SQLite on the loop thread or asyncpg, statements compiled once."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self) -> AbstractAsyncContextManager[Transaction]:
        return self._db.write()

    async def seen(self, work: Transaction, group: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        # Sizes rounded up to a power of two, the last id repeated: few statements.
        size = 1 << max(len(ids) - 1, 0).bit_length()
        params: dict[str, Any] = {f"id{i}": ids[min(i, len(ids) - 1)] for i in range(size)}
        params["consumer"] = group
        rows = await work.fetch_all(_seen(size), params)
        return {row["event_id"] for row in rows}

    async def record(self, work: Transaction, rows: Sequence[dict[str, Any]]) -> None:
        if len(rows) == 1:
            await work.execute(_RECORD, rows[0])
        else:
            await work.execute_many(_RECORD, rows)
