"""A consumer group member's stream commands: reading, claiming, acknowledging.

Delivery counts come from XPENDING: Redis increments them on every XREADGROUP delivery
and every XCLAIM/XAUTOCLAIM (but not ``XCLAIM ... JUSTID``), so they survive crashes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from services.platform.bus.streams import Bus, dead_letter_stream, text

#: Redis before 7 has no XINFO lag; it is counted up to this many entries (read whole,
#: once a second while the group is behind: kept small).
_LAG_COUNT_LIMIT = 1_000


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
        self._acks: dict[str, list[str]] = defaultdict(list)
        #: Whether the last :meth:`read_new`'s ``probe`` key existed (True without one).
        self.probe_found = True

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                # "0": whatever was published before the group existed is delivered too.
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def ack_later(self, entries: Mapping[str, Sequence[str]]) -> None:
        """Entries to XACK with the next :meth:`read_new` (or :meth:`flush_acks`)."""
        for stream, ids in entries.items():
            self._acks[stream].extend(ids)

    async def flush_acks(self) -> None:
        acks, self._acks = self._acks, defaultdict(list)
        try:
            await self.ack(acks)
        except BaseException:
            self.ack_later(acks)  # not known to have arrived: send them again
            raise

    async def read_new(self, count: int, block_ms: int, probe: str | None = None) -> list[Delivery]:
        """XREADGROUP ``>``: entries never delivered to the group, waiting up to ``block_ms``.

        The entries given to :meth:`ack_later` are acknowledged in the same round trip,
        queued *behind* the read. While the read blocks, Redis leaves them in the
        connection's buffer; it runs them in the event-loop turn that ends the wait: the
        turn of the XADD that brings new entries, which fsyncs once for the XADD, the
        read's own bookkeeping and the acks (at ``appendfsync always``, an ack sent on its
        own costs an fsync of its own, and the next XADD waits behind it). So a round's
        acknowledgements arrive at most ``block_ms`` later. ``probe``: a key whose
        existence is checked in the same trip, once the read returns (:attr:`probe_found`).
        """
        streams = dict.fromkeys(self.streams, ">")
        block = max(1, block_ms)  # never 0: that would block forever
        acks, self._acks = self._acks, defaultdict(list)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xreadgroup(self.group, self.name, streams, count=count, block=block)
                if probe is not None:
                    pipe.exists(probe)
                for stream, ids in acks.items():
                    if ids:
                        pipe.xack(stream, self.group, *ids)
                results = await pipe.execute()
            response = results[0]
            self.probe_found = probe is None or bool(results[1])
        except BaseException:
            self.ack_later(acks)  # not known to have arrived: send them again
            raise
        return [
            Delivery(text(stream), text(entry_id), fields or {}, 1)
            for stream, items in response or []
            for entry_id, fields in items
        ]

    @staticmethod
    def pending_id(pending: Mapping[str, Any]) -> str:
        """The entry id of one XPENDING record."""
        return text(pending["message_id"])

    async def own_pending(self, stream: str, count: int, after: str | None = None) -> list[Any]:
        """XPENDING entries this member read and has not acknowledged, after ``after``."""
        return list(
            await self.redis.xpending_range(
                stream,
                self.group,
                "-" if after is None else f"({after}",
                "+",
                count,
                consumername=self.name,
            )
        )

    async def take_back(self, stream: str, pending: Sequence[Any]) -> list[Delivery]:
        """This member's own pending entries, as deliveries, without counting a delivery.

        After the database or Redis failed under it, a member resumes what it held: that
        is not a new delivery (XCLAIM would count one), so the entries are read with
        XRANGE and their idle time reset with ``XCLAIM ... JUSTID`` (which counts
        nothing), so that other members do not take them as a dead member's.
        """
        if not pending:
            return []
        ids = [text(p["message_id"]) for p in pending]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xclaim(stream, self.group, self.name, 0, ids, justid=True)
            for entry_id in ids:
                pipe.xrange(stream, entry_id, entry_id, count=1)
            found = (await pipe.execute())[1:]
        return [
            Delivery(
                stream, entry_id, dict(entry[0][1]) if entry else {}, int(p["times_delivered"])
            )
            for entry_id, p, entry in zip(ids, pending, found, strict=True)
        ]

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
            if text(start) == "0-0":
                break
        return await self._with_counts(stream, claimed)

    async def _with_counts(self, stream: str, claimed: list[Any]) -> list[Delivery]:
        entries = [(text(i), f or {}) for i, f in claimed if i is not None]
        if len(entries) < len(claimed):
            await self._ack_deleted(stream)
        if not entries:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(stream, self.group, entry_id, entry_id, 1)
            found = await pipe.execute()
        counts = {text(f[0]["message_id"]): int(f[0]["times_delivered"]) for f in found if f}
        return [Delivery(stream, i, f, counts.get(i, 1)) for i, f in entries]

    async def _ack_deleted(self, stream: str) -> None:
        """Acks this member's pending entries that were deleted from the stream.

        Redis 6.2 claims such entries but answers nil without their ids, and would hand
        them over again on every claim; Redis 7 drops them from the pending list itself.
        """
        ids = [text(p["message_id"]) for p in await self.own_pending(stream, 1000)]
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

    async def forget_stale_members(self, idle_ms: int) -> None:
        """Deletes members idle longer than ``idle_ms`` that hold nothing.

        Each process start joins under a new name; without this the group would list
        every past process forever. A member with pending entries is never deleted.
        """
        for stream in self.streams:
            for info in await self.redis.xinfo_consumers(stream, self.group):
                name = text(info["name"])
                if name != self.name and int(info["pending"]) == 0 and int(info["idle"]) > idle_ms:
                    await self.redis.xgroup_delconsumer(stream, self.group, name)

    async def backlog(self, stream: str) -> tuple[int, int | None]:
        """(pending entries, entries not yet delivered to the group), in one round trip.

        Redis 7 reports the lag in XINFO GROUPS; before 7 it is counted past the group's
        last-delivered id, up to ``_LAG_COUNT_LIMIT`` (a second trip, reading entries).
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xpending(stream, self.group)
            pipe.xinfo_groups(stream)
            summary, groups = await pipe.execute()
        pending = int(summary["pending"])
        for info in groups:
            if text(info["name"]) == self.group:
                lag = info.get("lag")
                if lag is not None:
                    return pending, int(lag)
                if "entries-read" in info:  # Redis 7 with an unknown lag (after XDEL)
                    return pending, None
                after = "(" + text(info["last-delivered-id"])
                undelivered = await self.redis.xrange(stream, after, "+", _LAG_COUNT_LIMIT)
                return pending, len(undelivered)
        return pending, None

    async def dead_letters_waiting(self) -> int:
        """Entries on the group's dead-letter stream."""
        return int(await self.redis.xlen(dead_letter_stream(self.group)))
