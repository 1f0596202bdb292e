"""The event bus: Redis Streams, one stream per publishing context.

An entry's fields are exactly the :class:`~services.platform.outbox.Envelope` fields
(``event_id``, ``event_type``, ``aggregate_id``, ``occurred_at_us``, ``traceparent``,
``payload``). Publishing goes through the outbox relay (:mod:`services.platform.relay`);
consuming through :class:`services.platform.consumer.Consumer`. See docs/messaging.md.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from services.platform.metrics import Metrics
from services.platform.outbox import Envelope

#: The fields of a stream entry, in envelope order.
FIELDS = ("event_id", "event_type", "aggregate_id", "occurred_at_us", "traceparent", "payload")

# Longer than any consumer's BLOCK, so a blocking read is never cut short by the socket.
_SOCKET_TIMEOUT = 15.0
MAX_BLOCK_MS = 10_000


def stream_name(context: str) -> str:
    """The stream a context publishes to: ``emporium.<context>.events``."""
    return f"emporium.{context}.events"


def dead_letter_stream(group: str) -> str:
    """Where consumer group ``group`` parks the entries it gave up on."""
    return f"emporium.dead.{group}"


def encode(envelope: Envelope) -> dict[str, bytes]:
    """The stream entry fields of ``envelope``."""
    return {
        "event_id": envelope.event_id.encode(),
        "event_type": envelope.event_type.encode(),
        "aggregate_id": envelope.aggregate_id.encode(),
        "occurred_at_us": str(envelope.occurred_at_us).encode(),
        "traceparent": envelope.traceparent.encode(),
        "payload": envelope.payload,
    }


class MalformedEntry(ValueError):
    """A stream entry that is not an envelope (missing or unreadable fields)."""


def decode(fields: Mapping[bytes, bytes] | Mapping[str, bytes]) -> Envelope:
    """The envelope carried by a stream entry; raises :class:`MalformedEntry`."""
    values = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    missing = [name for name in FIELDS if name not in values]
    if missing:
        raise MalformedEntry(f"missing fields: {', '.join(missing)}")
    try:
        return Envelope(
            event_id=values["event_id"].decode(),
            event_type=values["event_type"].decode(),
            aggregate_id=values["aggregate_id"].decode(),
            occurred_at_us=int(values["occurred_at_us"]),
            traceparent=values["traceparent"].decode(),
            payload=bytes(values["payload"]),
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEntry(f"unreadable field: {exc}") from exc


class Bus:
    """A Redis connection pool that publishes envelopes to streams.

    Commands fail fast (a couple of quick reconnect attempts) when Redis is away: the
    relay and consumers own the longer retry loops, and readiness should say so at once.
    ``max_length`` trims streams approximately (``XADD MAXLEN ~``); leave it ``None``
    unless every group keeps up, since trimming drops entries a slow group has not read.
    """

    def __init__(self, client: Redis, *, max_length: int | None = None) -> None:
        self.client = client
        self._max_length = max_length

    @classmethod
    def from_url(cls, url: str, *, max_length: int | None = None) -> Bus:
        client = Redis.from_url(
            url,
            decode_responses=False,
            socket_connect_timeout=2.0,
            socket_timeout=_SOCKET_TIMEOUT,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
            health_check_interval=30,
        )
        return cls(client, max_length=max_length)

    async def publish(self, stream: str, envelopes: Sequence[Envelope]) -> list[str]:
        """XADDs ``envelopes`` in order, in one round trip; returns their entry ids."""
        if not envelopes:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for item in envelopes:
                pipe.xadd(
                    stream,
                    encode(item),  # type: ignore[arg-type]
                    maxlen=self._max_length,
                    approximate=True,
                )
            ids = await pipe.execute()
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def ping(self) -> None:
        """Raises when Redis does not answer (a readiness hook)."""
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


class Backoff:
    """Exponential backoff with full jitter, for loops that wait out an outage."""

    def __init__(self, initial: float = 0.05, cap: float = 1.0) -> None:
        self._initial = initial
        self._cap = cap
        self._attempt = 0

    def next(self) -> float:
        delay = min(self._cap, self._initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self._attempt = 0


class BusMetrics:
    """The bus's metrics on one registry (shared by a process's relay and consumers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outbox_backlog = Gauge(
            "emporium_outbox_backlog",
            "Outbox rows committed but not yet published.",
            registry=registry,
        )
        self.published = Counter(
            "emporium_events_published_total",
            "Events the outbox relay published, by stream.",
            ["stream"],
            registry=registry,
        )
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
        self.dead_letters = Counter(
            "emporium_dead_letters_total",
            "Entries moved to a dead-letter stream, by group and type.",
            ["group", "event_type"],
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


_metrics: weakref.WeakKeyDictionary[Any, BusMetrics] = weakref.WeakKeyDictionary()


def bus_metrics(metrics: Metrics | None) -> BusMetrics | None:
    """The bus metrics registered on ``metrics.registry`` (created on first use)."""
    if metrics is None:
        return None
    found = _metrics.get(metrics.registry)
    if found is None:
        found = _metrics[metrics.registry] = BusMetrics(metrics.registry)
    return found
