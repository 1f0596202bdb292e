"""What order watchers are told: each change committed in this process, with its event
(:meth:`Notifier.notify`, fired by the commit), and, within one poll interval, that a change
was committed by another instance sharing the database (a replica that holds the saga).
The poll is one query per interval for every watched order together, not one per watcher,
and runs only while someone watches.

Subscribe first, then read the order, then follow the feed: a change committed in between
is pushed (or found by the poll), never missed.

>>> with notifier.watch(order_id) as feed:
...     view = ...  # read the order
...     feed.seen = view.version
...     changes = await feed.next(timeout=30)  # None: read the events after feed.seen
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from services.order.domain import Event
from services.platform.tasks import stop_task

log = logging.getLogger("emporium.order")

#: The stored version of each of the given orders (absent: unknown).
Versions = Callable[[Sequence[str]], Awaitable[Mapping[str, int]]]
#: One change of an order's stream: its version and event.
Appended = tuple[int, Event]

_CHUNK = 500


class Feed:
    """One watcher's subscription to one order (:meth:`Notifier.watch`).

    ``seen`` is the version the watcher has applied (``None`` until it has read the order);
    the changes this process commits after it arrive in order through :meth:`next`.
    """

    __slots__ = ("_pushed", "_signal", "_stale", "seen")

    def __init__(self) -> None:
        self.seen: int | None = None
        self._pushed: list[Appended] = []
        self._stale = False
        self._signal = asyncio.Event()

    def push(self, version: int, event: Event) -> None:
        self._pushed.append((version, event))
        self._signal.set()

    def mark_stale(self) -> None:
        """A change was committed that this feed did not carry: the watcher must read."""
        self._stale = True
        self._signal.set()

    @property
    def known(self) -> int:
        """The newest version the watcher has or has been handed."""
        newest = max((version for version, _ in self._pushed), default=-1)
        return max(newest, -1 if self.seen is None else self.seen)

    async def next(self, timeout: float | None) -> list[Appended] | None:
        """The changes after ``seen``, in order, as soon as there are any; ``None`` when
        they must be read from the database instead: another instance committed one, some
        were not carried here, or ``timeout`` passed first."""
        assert self.seen is not None, "set seen to the version read before following"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if not (self._pushed or self._stale):
                if left is not None and left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.wait(), left)
            self._signal.clear()
            pushed, self._pushed = self._pushed, []
            if self._stale:
                self._stale = False
                return None
            fresh = sorted((c for c in pushed if c[0] > self.seen), key=lambda c: c[0])
            if not fresh:
                continue
            if [version for version, _ in fresh] != list(
                range(self.seen + 1, self.seen + 1 + len(fresh))
            ):
                return None  # a gap: a version committed elsewhere lies between
            return fresh


class Notifier:
    def __init__(self, versions: Versions | None = None, *, interval: float = 0.2) -> None:
        self._versions = versions
        self._interval = interval
        #: Per watched order: its watchers' feeds.
        self._feeds: dict[str, set[Feed]] = {}
        self._poller: asyncio.Task[None] | None = None

    def poll(self, versions: Versions) -> None:
        """Also tells watchers of changes committed elsewhere, seen through ``versions``."""
        self._versions = versions

    def notify(self, order_id: str, version: int, event: Event) -> None:
        """``event``, the order's ``version``, was committed here."""
        for feed in self._feeds.get(order_id, ()):
            feed.push(version, event)

    @contextlib.contextmanager
    def watch(self, order_id: str) -> Iterator[Feed]:
        """A feed of ``order_id``'s changes for as long as the block runs."""
        feed = Feed()
        self._feeds.setdefault(order_id, set()).add(feed)
        if self._versions is not None and self._poller is None:
            self._poller = asyncio.create_task(self._poll(self._versions))
        try:
            yield feed
        finally:
            feeds = self._feeds.get(order_id)
            if feeds is not None:
                feeds.discard(feed)
                if not feeds:
                    del self._feeds[order_id]

    async def close(self) -> None:
        poller, self._poller = self._poller, None
        await stop_task(poller)

    async def _poll(self, versions: Versions) -> None:
        """While anyone watches: every interval, the stored versions of all watched orders
        in one query (per 500), telling the watchers that are behind."""
        try:
            while self._feeds:
                await asyncio.sleep(self._interval)
                watched = list(self._feeds)
                for start in range(0, len(watched), _CHUNK):
                    try:
                        current = await versions(watched[start : start + _CHUNK])
                    except Exception:
                        log.debug("could not poll the watched orders", exc_info=True)
                        break
                    self._tell_behind(current)
        finally:
            if self._poller is asyncio.current_task():
                self._poller = None

    def _tell_behind(self, current: Mapping[str, int]) -> None:
        for order_id, version in current.items():
            for feed in self._feeds.get(order_id, ()):
                if feed.seen is not None and version > feed.known:
                    feed.mark_stale()
