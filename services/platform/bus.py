"""The event bus: Redis Streams, one stream per publishing context.

An entry's fields are exactly the :class:`~services.platform.outbox.Envelope` fields
(``event_id``, ``event_type``, ``aggregate_id``, ``occurred_at_us``, ``traceparent``,
``payload``). This module knows Redis: the connection, publishing, and a consumer
group member's stream commands. Publishing goes through the outbox relay
(:mod:`services.platform.relay`); consuming through
:class:`services.platform.consumer.Consumer`. See docs/messaging.md.
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from services.platform.metrics import Metrics, OldestAge
from services.platform.outbox import Envelope

#: The fields of a stream entry, in envelope order.
FIELDS = ("event_id", "event_type", "aggregate_id", "occurred_at_us", "traceparent", "payload")

# Longer than any consumer's BLOCK, so a blocking read is never cut short by the socket.
_SOCKET_TIMEOUT = 15.0
MAX_BLOCK_MS = 10_000


#: Redis before 7 has no XINFO lag; it is counted up to this many entries.
_LAG_COUNT_LIMIT = 10_000


def stream_name(context: str) -> str:
    """The stream a context publishes to: ``emporium.<context>.events``."""
    return f"emporium.{context}.events"


def dead_letter_stream(group: str) -> str:
    """Where consumer group ``group`` parks the entries it gave up on."""
    return f"emporium.dead.{group}"


def encode(envelope: Envelope) -> dict[FieldT, EncodableT]:
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
                    encode(item),
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


@dataclass(slots=True)
class Delivery:
    """A stream entry as delivered to a group member, with its delivery count."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]  # empty when the entry was deleted while pending
    deliveries: int


class GroupMember:
    """The Redis side of one consumer (``name``) in consumer group ``group``.

    Delivery counts come from XPENDING: Redis increments them on every XREADGROUP
    delivery and every XCLAIM/XAUTOCLAIM, so they survive consumer crashes.
    """

    def __init__(self, bus: Bus, group: str, name: str, streams: Sequence[str]) -> None:
        self.redis: Any = bus.client
        self.group = group
        self.name = name
        self.streams = tuple(streams)

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                # "0": whatever was published before the group existed is delivered too.
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read_new(self, count: int, block_ms: int) -> list[Delivery]:
        """XREADGROUP ``>``: entries never delivered to the group, waiting up to ``block_ms``."""
        response = await self.redis.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self.streams, ">"),
            count=count,
            block=max(1, block_ms),  # never 0: that would block forever
        )
        return [
            Delivery(_text(stream), _text(entry_id), fields or {}, 1)
            for stream, items in response or []
            for entry_id, fields in items
        ]

    async def own_pending(self, stream: str, count: int, after: str | None = None) -> list[str]:
        """Ids of entries this member read and has not acknowledged, after ``after``."""
        pending = await self.redis.xpending_range(
            stream,
            self.group,
            "-" if after is None else f"({after}",
            "+",
            count,
            consumername=self.name,
        )
        return [_text(p["message_id"]) for p in pending]

    async def claim(self, stream: str, ids: Sequence[str], min_idle_ms: int) -> list[Delivery]:
        """XCLAIM ``ids`` that have been idle at least ``min_idle_ms``."""
        claimed = await self.redis.xclaim(stream, self.group, self.name, min_idle_ms, list(ids))
        return await self._with_counts(stream, claimed)

    async def autoclaim(self, stream: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """XAUTOCLAIM every entry of ``stream`` idle for ``min_idle_ms`` (a dead member's)."""
        claimed: list[Any] = []
        start: Any = "0-0"
        for _ in range(100):  # bounded scan: the rest waits for the next round
            response = await self.redis.xautoclaim(
                stream, self.group, self.name, min_idle_ms, start, count=count
            )
            start = response[0]
            claimed.extend(response[1])
            if _text(start) == "0-0":
                break
        return await self._with_counts(stream, claimed)

    async def _with_counts(self, stream: str, claimed: list[Any]) -> list[Delivery]:
        entries = [(_text(i), f or {}) for i, f in claimed if i is not None]
        if len(entries) < len(claimed):
            await self._ack_deleted(stream)
        if not entries:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(stream, self.group, entry_id, entry_id, 1)
            found = await pipe.execute()
        counts = {_text(f[0]["message_id"]): int(f[0]["times_delivered"]) for f in found if f}
        return [Delivery(stream, i, f, counts.get(i, 1)) for i, f in entries]

    async def _ack_deleted(self, stream: str) -> None:
        """Acks this member's pending entries that were deleted from the stream.

        Redis 6.2 claims such entries but answers nil without their ids, and would hand
        them over again on every claim; Redis 7 drops them from the pending list itself.
        """
        ids = await self.own_pending(stream, 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(stream, entry_id, entry_id, count=1)
            found = await pipe.execute()
        gone = [entry_id for entry_id, entry in zip(ids, found, strict=True) if not entry]
        if gone:
            await self.redis.xack(stream, self.group, *gone)

    async def ack(self, entries: Mapping[str, Sequence[str]]) -> None:
        """XACK entry ids, by stream, in one round trip."""
        if not entries:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in entries.items():
                pipe.xack(stream, self.group, *ids)
            await pipe.execute()

    async def dead_letter(self, delivery: Delivery, event_type: str, reason: str) -> None:
        """Copies the entry, with why, to the group's dead-letter stream and acks it, atomically."""
        fields: dict[Any, Any] = dict(delivery.fields)
        fields.update(
            {
                "dead_reason": reason,
                "dead_event_type": event_type,
                "dead_source_stream": delivery.stream,
                "dead_source_id": delivery.entry_id,
                "dead_group": self.group,
                "dead_deliveries": str(delivery.deliveries),
                "dead_at_us": str(time.time_ns() // 1000),
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(dead_letter_stream(self.group), fields)
            pipe.xack(delivery.stream, self.group, delivery.entry_id)
            await pipe.execute()

    async def forget_stale_members(self, idle_ms: int) -> None:
        """Deletes members idle longer than ``idle_ms`` that hold nothing.

        Each process start joins under a new name; without this the group would list
        every past process forever. A member with pending entries is never deleted.
        """
        for stream in self.streams:
            for info in await self.redis.xinfo_consumers(stream, self.group):
                name = _text(info["name"])
                if name != self.name and int(info["pending"]) == 0 and int(info["idle"]) > idle_ms:
                    await self.redis.xgroup_delconsumer(stream, self.group, name)

    async def backlog(self, stream: str) -> tuple[int, int | None]:
        """(pending entries, entries not yet delivered to the group).

        Redis 7 reports the lag in XINFO GROUPS; before 7 it is counted past the group's
        last-delivered id, up to ``_LAG_COUNT_LIMIT``.
        """
        pending = int((await self.redis.xpending(stream, self.group))["pending"])
        for info in await self.redis.xinfo_groups(stream):
            if _text(info["name"]) == self.group:
                lag = info.get("lag")
                if lag is not None:
                    return pending, int(lag)
                if "entries-read" in info:  # Redis 7 with an unknown lag (after XDEL)
                    return pending, None
                after = "(" + _text(info["last-delivered-id"])
                undelivered = await self.redis.xrange(stream, after, "+", _LAG_COUNT_LIMIT)
                return pending, len(undelivered)
        return pending, None

    async def dead_letters_waiting(self) -> int:
        """Entries on the group's dead-letter stream."""
        return int(await self.redis.xlen(dead_letter_stream(self.group)))


async def replay_dead_letters(bus: Bus, group: str, *, limit: int = 100) -> int:
    """Moves up to ``limit`` dead letters of ``group`` back to their source streams.

    For after the cause is fixed. A dead-lettered event never reached the group's inbox,
    so it is applied once replayed; other groups on that stream see it again and skip
    it through their own inboxes. Returns how many entries were moved.
    """
    redis: Any = bus.client
    dead = dead_letter_stream(group)
    moved = 0
    for entry_id, fields in await redis.xrange(dead, count=limit):
        source = fields.get(b"dead_source_stream")
        if source is None:
            continue
        original = {k: v for k, v in fields.items() if not k.startswith(b"dead_")}
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(source, original)
            pipe.xdel(dead, entry_id)
            await pipe.execute()
        moved += 1
    return moved


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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


_metrics: weakref.WeakKeyDictionary[Any, BusMetrics] = weakref.WeakKeyDictionary()


def bus_metrics(metrics: Metrics | None) -> BusMetrics | None:
    """The bus metrics registered on ``metrics.registry`` (created on first use)."""
    if metrics is None:
        return None
    found = _metrics.get(metrics.registry)
    if found is None:
        found = _metrics[metrics.registry] = BusMetrics(metrics.registry)
    return found
