"""The bus's Prometheus metrics (shared by a process's relay and consumers) and what a
consumer reports: its metrics and its log lines."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.platform import logs, telemetry
from services.platform.metrics import Metrics, OldestAge, PerRegistry
from services.platform.outbox import Envelope

if TYPE_CHECKING:
    from services.platform.bus.group import Delivery, GroupMember

log = logging.getLogger("emporium.consumer")

_REFRESH_SECONDS = 1.0


class BusMetrics:
    """The bus's metrics on one registry (shared by a process's relay and consumers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outbox_backlog = Gauge(
            "emporium_outbox_backlog",
            "Outbox rows committed but not yet published.",
            registry=registry,
        )
        self.outbox_oldest = OldestAge(
            registry,
            "emporium_outbox_oldest_unpublished_seconds",
            "Age of the oldest outbox row not yet published (0 when none waits).",
        )
        self.published = Counter(
            "emporium_events_published_total",
            "Events the outbox relay published, by stream.",
            ["stream"],
            registry=registry,
        )
        self._consumer_metrics(registry)

    def _consumer_metrics(self, registry: CollectorRegistry) -> None:
        self.processed = Counter(
            "emporium_events_processed_total",
            "Events a consumer group finished, by type and outcome "
            "(handled, duplicate, unhandled, dead_lettered).",
            ["group", "event_type", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "emporium_event_handler_failures_total",
            "Handler attempts that raised, by group and type.",
            ["group", "event_type"],
            registry=registry,
        )
        self.transient_failures = Counter(
            "emporium_consumer_transient_failures_total",
            "Consumer rounds that failed for the database, Redis or a downstream service "
            "(retried with backoff; no delivery counted).",
            ["group"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "emporium_dead_letters_total",
            "Entries moved to a dead-letter stream, by group and type.",
            ["group", "event_type"],
            registry=registry,
        )
        self.dead_letters_waiting = Gauge(
            "emporium_dead_letters_waiting",
            "Entries on a group's dead-letter stream, not yet replayed (XLEN).",
            ["group"],
            registry=registry,
        )
        self.pending = Gauge(
            "emporium_consumer_pending",
            "Entries delivered to a group but not yet acknowledged (XPENDING).",
            ["group", "stream"],
            registry=registry,
        )
        self.lag = Gauge(
            "emporium_consumer_lag",
            "Entries in the stream not yet delivered to the group (XINFO GROUPS lag; Redis 7+).",
            ["group", "stream"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "emporium_event_delivery_seconds",
            "Time from an event's occurrence to its handler's commit, by group.",
            ["group"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


_bus_metrics = PerRegistry(BusMetrics)


def bus_metrics(metrics: Metrics | None) -> BusMetrics | None:
    """The bus metrics registered on ``metrics.registry`` (created on first use)."""
    return _bus_metrics.get(metrics)


def _trace_id(traceparent: str) -> str:
    """The trace id (32 hex digits) of a W3C ``traceparent``, or ``""``."""
    parent = telemetry.parse_traceparent(traceparent)
    return format(parent.trace_id, "032x") if parent is not None else ""


class ConsumerReport:
    """What consumer group ``group`` counts and logs (metrics optional)."""

    def __init__(self, metrics: BusMetrics | None, group: str) -> None:
        self._metrics = metrics
        self._group = group
        self._refreshed_at = 0.0
        # Each event counts once: the labelled children are looked up once, not per event.
        self._processed: dict[tuple[str, str], Counter] = {}
        self._delivery = None if metrics is None else metrics.delivery_seconds.labels(group)

    def processed(self, envelope: Envelope, outcome: str) -> None:
        if self._metrics is not None:
            key = (envelope.event_type, outcome)
            counter = self._processed.get(key)
            if counter is None:
                counter = self._metrics.processed.labels(self._group, *key)
                self._processed[key] = counter
            counter.inc()
            if outcome != "duplicate" and self._delivery is not None:
                age = time.time() - envelope.occurred_at_us / 1_000_000
                self._delivery.observe(max(age, 0.0))
        if outcome == "handled" and log.isEnabledFor(logging.INFO):
            # The access log covers RPCs; this line puts the event's effect in its trace
            # too (one order, one trace id, across the bus). A line per event, so it is
            # written the access log's cheap way.
            fields = {
                "group": self._group,
                "event_type": envelope.event_type,
                "event_id": envelope.event_id,
                "aggregate_id": envelope.aggregate_id,
                "trace_id": _trace_id(envelope.traceparent),
            }
            logs.fast_line(log, logging.INFO, "event handled", fields)

    def failed(self, envelope: Envelope, deliveries: int, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.failures.labels(self._group, envelope.event_type).inc()
        log.warning(
            "event handler failed",
            extra={
                "group": self._group,
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "deliveries": deliveries,
                "reason": reason,
            },
        )

    def transient(self, error: BaseException, *, first: bool) -> None:
        if self._metrics is not None:
            self._metrics.transient_failures.labels(self._group).inc()
        if first:
            log.warning(
                "consumer cannot make progress; retrying",
                extra={"group": self._group, "reason": repr(error)},
            )

    def dead_lettered(self, entry: Delivery, event_type: str, reason: str) -> None:
        log.error(
            "event dead-lettered",
            extra={
                "group": self._group,
                "entry_id": entry.entry_id,
                "event_type": event_type,
                "deliveries": entry.deliveries,
                "reason": reason,
            },
        )
        if self._metrics is not None:
            self._metrics.dead_letters.labels(self._group, event_type).inc()
            self._metrics.processed.labels(self._group, event_type, "dead_lettered").inc()

    async def refresh(self, member: GroupMember) -> None:
        """The pending and lag gauges, at most once a second."""
        if self._metrics is None or time.monotonic() - self._refreshed_at < _REFRESH_SECONDS:
            return
        self._refreshed_at = time.monotonic()
        for stream in member.streams:
            pending, lag = await member.backlog(stream)
            self._metrics.pending.labels(self._group, stream).set(pending)
            if lag is not None:
                self._metrics.lag.labels(self._group, stream).set(lag)
        waiting = await member.dead_letters_waiting()
        self._metrics.dead_letters_waiting.labels(self._group).set(waiting)
