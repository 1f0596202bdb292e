"""Per-aggregate order and handler retries inside one consumer group member.

When an event's handler fails and the event awaits its retry, the member's later events
of the same aggregate (``<stream> <aggregate id>``) wait behind it: pending, not
acknowledged, held in memory, and released in stream order once it is applied or
dead-lettered (then they are parked behind its dead letter).
"""

from __future__ import annotations

import time
from collections import defaultdict

from services.platform.bus.group import Delivery
from services.platform.bus.streams import entry_order

Entry = tuple[str, str]  # (stream, entry id)


class AggregateQueue:
    """Which aggregates wait on a failed entry, and the entries held behind each."""

    def __init__(self) -> None:
        self._waiting: dict[str, Entry] = {}
        self._held: dict[str, dict[str, Delivery]] = defaultdict(dict)

    def waiting(self, key: str) -> bool:
        return key in self._waiting

    def must_wait(self, key: str, entry: Delivery) -> bool:
        """Holds ``entry`` when its aggregate waits on another entry; True if held."""
        blocker = self._waiting.get(key)
        if blocker is None or blocker == (entry.stream, entry.entry_id):
            return False
        self.hold(key, entry)
        return True

    def hold(self, key: str, entry: Delivery) -> None:
        self._held[key][entry.entry_id] = entry

    def wait_on(self, key: str, entry: Delivery) -> None:
        """The aggregate ``key`` waits until ``entry`` (which failed) is settled."""
        self._waiting[key] = (entry.stream, entry.entry_id)

    def holds(self, stream: str, entry_id: str) -> bool:
        """Whether ``entry_id`` is held here (not to be resumed from Redis meanwhile)."""
        return any(
            d.entry_id == entry_id and d.stream == stream
            for held in self._held.values()
            for d in held.values()
        )

    def release(self, blocker: Entry) -> list[Delivery]:
        """The entries that waited behind ``blocker``, in stream order, now free to go."""
        for key, entry in list(self._waiting.items()):
            if entry == blocker:
                del self._waiting[key]
                held = self._held.pop(key, {})
                return sorted(held.values(), key=lambda d: entry_order(d.entry_id))
        return []


class Retries:
    """Entries whose handler failed, and when each is due to be claimed back and retried."""

    def __init__(self) -> None:
        # (stream, entry id) -> (when, the min idle ms for XCLAIM: half the delay)
        self._due: dict[Entry, tuple[float, int]] = {}

    def __contains__(self, entry: Entry) -> bool:
        return entry in self._due

    def schedule(self, entry: Delivery, delay: float) -> None:
        self._due[(entry.stream, entry.entry_id)] = (time.monotonic() + delay, int(delay * 500))

    def forget(self, entry: Delivery) -> None:
        self._due.pop((entry.stream, entry.entry_id), None)

    def seconds_to_next(self) -> float | None:
        if not self._due:
            return None
        return min(at for at, _ in self._due.values()) - time.monotonic()

    def take_due(self) -> dict[tuple[str, int], list[str]]:
        """The entries due now, by (stream, min idle ms), no longer scheduled."""
        now = time.monotonic()
        due: dict[tuple[str, int], list[str]] = defaultdict(list)
        for (stream, entry_id), (at, min_idle) in list(self._due.items()):
            if at <= now:
                del self._due[(stream, entry_id)]
                due[(stream, min_idle)].append(entry_id)
        return due
