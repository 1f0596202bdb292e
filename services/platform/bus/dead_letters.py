"""A consumer group's dead letters: parking, listing, replaying and discarding them.

A dead letter is the original stream entry, unchanged, plus ``dead_*`` fields saying why
and from where. While an aggregate has a dead letter in a group, the group applies no
later event of that aggregate: those are parked behind it (reason ``held behind ...``),
so nothing newer is applied before the event that failed. The set of such aggregates
(``<stream> <aggregate id>``) lives beside the dead-letter stream and changes in the
same MULTI as the stream. Replay puts events back on their source streams in their
original stream order and unblocks an aggregate when none of its dead letters is left.
See docs/messaging.md ("Dead letters").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.platform.bus.group import Delivery
from services.platform.bus.streams import (
    Bus,
    blocked_aggregates_key,
    dead_letter_stream,
    entry_order,
    text,
)
from services.platform.clock import now_us

#: How many dead letters the commands read at most (a group with more has a bigger
#: problem than this tool; they are still there, the next run sees the rest).
SCAN_LIMIT = 10_000


def aggregate_key(stream: str, aggregate_id: str) -> str:
    """The member of the blocked-aggregates set for ``aggregate_id`` on ``stream``."""
    return f"{stream} {aggregate_id}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of a group's dead-letter stream."""

    id: str  # the entry id on the dead-letter stream
    event_id: str
    event_type: str
    aggregate_id: str
    source_stream: str
    source_id: str
    deliveries: int
    reason: str
    dead_at_us: int
    fields: dict[bytes, bytes]

    @property
    def aggregate(self) -> str | None:
        """Its blocked-aggregates member, or ``None`` for an entry that did not decode."""
        if not self.aggregate_id:
            return None
        return aggregate_key(self.source_stream, self.aggregate_id)

    @property
    def original(self) -> dict[bytes, bytes]:
        """The entry as it was on its source stream."""
        return {k: v for k, v in self.fields.items() if not k.startswith(b"dead_")}

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "aggregate_id": self.aggregate_id,
            "source_stream": self.source_stream,
            "source_id": self.source_id,
            "deliveries": self.deliveries,
            "reason": self.reason,
            "dead_at_us": self.dead_at_us,
        }


def _dead_letter(entry_id: Any, fields: dict[bytes, bytes]) -> DeadLetter:
    def field(name: str) -> str:
        return fields.get(name.encode(), b"").decode(errors="replace")

    return DeadLetter(
        id=text(entry_id),
        event_id=field("event_id"),
        event_type=field("dead_event_type") or field("event_type"),
        aggregate_id=field("dead_aggregate_id"),
        source_stream=field("dead_source_stream"),
        source_id=field("dead_source_id"),
        deliveries=int(field("dead_deliveries") or 0),
        reason=field("dead_reason"),
        dead_at_us=int(field("dead_at_us") or 0),
        fields=dict(fields),
    )


class ReplayRefused(ValueError):
    """Replaying these would apply an event before an earlier one of its aggregate."""


class DeadLetters:
    """The dead letters of consumer group ``group``."""

    def __init__(self, bus: Bus, group: str) -> None:
        self.redis: Any = bus.client
        self.group = group
        self.stream = dead_letter_stream(group)
        self.blocked_key = blocked_aggregates_key(group)

    async def park(
        self, delivery: Delivery, event_type: str, aggregate_id: str, reason: str
    ) -> None:
        """Copies the entry, with why, to the dead-letter stream, blocks its aggregate
        (when it has one) and acks it: all in one MULTI."""
        fields: dict[Any, Any] = dict(delivery.fields)
        fields.update(
            {
                "dead_reason": reason,
                "dead_event_type": event_type,
                "dead_aggregate_id": aggregate_id,
                "dead_source_stream": delivery.stream,
                "dead_source_id": delivery.entry_id,
                "dead_group": self.group,
                "dead_deliveries": str(delivery.deliveries),
                "dead_at_us": str(now_us()),
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.stream, fields)
            if aggregate_id:
                pipe.sadd(self.blocked_key, aggregate_key(delivery.stream, aggregate_id))
            pipe.xack(delivery.stream, self.group, delivery.entry_id)
            await pipe.execute()

    async def blocked(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (see :func:`aggregate_key`) have a dead letter: one round trip."""
        if not keys:
            return set()
        found = await self.redis.smismember(self.blocked_key, list(keys))
        return {key for key, member in zip(keys, found, strict=True) if int(member)}

    async def entries(self, limit: int = SCAN_LIMIT) -> list[DeadLetter]:
        """The dead letters, oldest first."""
        entries = await self.redis.xrange(self.stream, count=limit)
        return [_dead_letter(entry_id, fields) for entry_id, fields in entries]

    async def replay(self, ids: Iterable[str] | None = None) -> list[DeadLetter]:
        """Puts dead letters back on their source streams; returns those replayed.

        ``ids`` ``None`` replays all of them. Otherwise each chosen dead letter is
        replayed together with the later dead letters of its aggregate (held behind
        it); :class:`ReplayRefused` when an earlier one of that aggregate would stay.
        Events go back in their original stream order, in one MULTI with their removal
        from the dead-letter stream and the unblocking of their aggregates.
        """
        dead = await self.entries()
        chosen = dead if ids is None else self._with_followers(dead, set(ids))
        if not chosen:
            return []
        chosen.sort(key=lambda d: (d.source_stream, entry_order(d.source_id)))
        async with self.redis.pipeline(transaction=True) as pipe:
            for letter in chosen:
                pipe.xadd(letter.source_stream, letter.original)
            self._remove(pipe, dead, chosen)
            await pipe.execute()
        return chosen

    async def discard(self, ids: Iterable[str]) -> list[DeadLetter]:
        """Deletes the chosen dead letters for good; returns those deleted."""
        wanted = set(ids)
        dead = await self.entries()
        chosen = [d for d in dead if d.id in wanted]
        if chosen:
            async with self.redis.pipeline(transaction=True) as pipe:
                self._remove(pipe, dead, chosen)
                await pipe.execute()
        return chosen

    def _remove(self, pipe: Any, dead: Sequence[DeadLetter], chosen: Sequence[DeadLetter]) -> None:
        gone = {d.id for d in chosen}
        pipe.xdel(self.stream, *gone)
        left = {d.aggregate for d in dead if d.id not in gone}
        unblocked = {d.aggregate for d in chosen} - left - {None}
        if unblocked:
            pipe.srem(self.blocked_key, *unblocked)

    @staticmethod
    def _with_followers(dead: Sequence[DeadLetter], ids: set[str]) -> list[DeadLetter]:
        unknown = ids - {d.id for d in dead}
        if unknown:
            raise ReplayRefused(f"no such dead letter: {', '.join(sorted(unknown))}")
        chosen: dict[str, DeadLetter] = {}
        for letter in dead:
            if letter.id not in ids:
                continue
            same = [d for d in dead if letter.aggregate and d.aggregate == letter.aggregate]
            earlier = [
                d
                for d in same
                if entry_order(d.source_id) < entry_order(letter.source_id) and d.id not in ids
            ]
            if earlier:
                raise ReplayRefused(
                    f"{letter.id} ({letter.event_type} of {letter.aggregate_id}) is held behind "
                    f"dead letter {earlier[0].id}: replay or discard that one first"
                )
            chosen[letter.id] = letter
            for follower in same:
                if entry_order(follower.source_id) > entry_order(letter.source_id):
                    chosen[follower.id] = follower
        return list(chosen.values())
